/**
 * The create-session dialog: MANUAL (CreateSession), TRAINING (CreateTrainingSession) and HYBRID
 * (CreateHybridSession), with the seed's fields. The server validates; its field violations are
 * shown beside the fields they name.
 */
import { SessionMode } from '../gen/neuro/v1/common_pb.js';
import { api, describeError } from './api.js';
import { h, mount, toast } from './dom.js';
import { parsePairs } from './forms.js';

type Mode = 'MANUAL' | 'TRAINING' | 'HYBRID';

export const ROBOTS = ['franka_panda.urdf', 'ur5.urdf', 'two_link_arm.urdf'];

function randomId(mode: Mode): string {
  const r = Math.random().toString(36).slice(2, 8);
  return `${mode.toLowerCase()}-${r}`;
}

function field(label: string, input: HTMLElement, name: string, wide = false): HTMLElement {
  return h('label', { class: `field${wide ? ' wide' : ''}`, 'data-field': name }, label, input, h('span', { class: 'why' }));
}

function num(name: string, value: number, attrs: Record<string, unknown> = {}): HTMLInputElement {
  return h('input', { type: 'number', name, value: String(value), step: 'any', ...attrs });
}

function text(name: string, value: string, attrs: Record<string, unknown> = {}): HTMLInputElement {
  return h('input', { type: 'text', name, value, autocomplete: 'off', spellcheck: 'false', ...attrs });
}

export function createDialog(onCreated: (sessionId: string) => void): { el: HTMLDialogElement; open(mode?: Mode): void } {
  let mode: Mode = 'MANUAL';
  const i = {
    id: text('session_id', '', { required: true, maxlength: '128', pattern: '[A-Za-z0-9._:\\-]{1,128}' }),
    robot: h('select', { name: 'robot_urdf' }, ROBOTS.map((r) => h('option', { value: r }, r))),
    sx: num('start_x', 0),
    sy: num('start_y', 0),
    sz: num('start_z', 0),
    goalOn: h('input', { type: 'checkbox', name: 'goal_on' }),
    gx: num('goal_x', 0.4),
    gy: num('goal_y', 0.2),
    gz: num('goal_z', 0.5),
    obstacles: h('textarea', { name: 'obstacles', rows: '3', spellcheck: 'false' }, '[]'),
    width: num('width', 1920, { min: '1', step: '1' }),
    height: num('height', 1080, { min: '1', step: '1' }),
    fps: num('fps', 30, { min: '1', step: '1' }),
    transport: h('select', { name: 'transport' }, h('option', { value: 'webrtc' }, 'webrtc'), h('option', { value: 'none' }, 'none')),
    algorithm: h('select', { name: 'algorithm' }, h('option', { value: 'PPO' }, 'PPO'), h('option', { value: 'REINFORCE' }, 'REINFORCE')),
    episodes: num('total_episodes', 10000, { min: '1', step: '1' }),
    envs: num('parallel_envs', 4, { min: '1', step: '1' }),
    hyper: h('textarea', { name: 'hyperparameters', rows: '3', spellcheck: 'false' }, 'learning_rate=0.0003\ngamma=0.99\nclip_range=0.2'),
    gpus: num('training_gpus', 4, { min: '0', step: '1' }),
    mem: num('training_memory_gb', 32, { min: '0', step: '1' }),
    sims: num('isaac_sim_instances', 4, { min: '1', step: '1' }),
    labels: h('textarea', { name: 'labels', rows: '2', spellcheck: 'false', placeholder: 'zone=zone-a' }),
    initial: text('initial_controller', 'ai'),
    record: h('input', { type: 'checkbox', name: 'record_demonstrations', checked: true }),
    idle: num('human_idle_timeout_seconds', 60, { min: '0', step: '1' }),
    force: h('input', { type: 'checkbox', name: 'allow_force_takeover' }),
  };
  const addBox = h(
    'button',
    {
      type: 'button',
      class: 'small ghost',
      onClick: () => {
        let list: unknown[] = [];
        try {
          list = JSON.parse(i.obstacles.value || '[]') as unknown[];
        } catch {
          list = [];
        }
        list.push({ id: `box-${list.length + 1}`, shape: 'box', position: { x: 0.3, y: -0.2, z: 0.25 }, size: { x: 0.1, y: 0.1, z: 0.5 } });
        i.obstacles.value = JSON.stringify(list, null, 1);
      },
    },
    '+ box',
  );

  const modeSeg = h('div', { class: 'seg', role: 'tablist' });
  const errEl = h('span', { class: 'err', 'data-testid': 'create-error' });
  const submit = h('button', { class: 'primary', type: 'submit', 'data-action': 'create' }, 'Create');
  const sceneSet = h(
    'fieldset',
    null,
    h('legend', null, 'scene_config'),
    h(
      'div',
      { class: 'fields' },
      field('robot_urdf', i.robot, 'scene_config.robot_urdf'),
      field('start x', i.sx, 'scene_config.start_position.x'),
      field('start y', i.sy, 'scene_config.start_position.y'),
      field('start z', i.sz, 'scene_config.start_position.z'),
      h('label', { class: 'field check' }, i.goalOn, 'goal_position'),
      field('goal x', i.gx, 'scene_config.goal_position.x'),
      field('goal y', i.gy, 'scene_config.goal_position.y'),
      field('goal z', i.gz, 'scene_config.goal_position.z'),
      h('div', { class: 'field wide', 'data-field': 'scene_config.obstacles' }, h('span', { class: 'row' }, 'obstacles (JSON: id, shape box|sphere|cylinder, position, size)', addBox), i.obstacles, h('span', { class: 'why' })),
    ),
  );
  const streamSet = h(
    'fieldset',
    null,
    h('legend', null, 'stream_config'),
    h('div', { class: 'fields' }, field('width', i.width, 'stream_config.width'), field('height', i.height, 'stream_config.height'), field('fps', i.fps, 'stream_config.fps'), field('transport', i.transport, 'stream_config.transport')),
  );
  const trainingSet = h(
    'fieldset',
    null,
    h('legend', null, 'training_config'),
    h(
      'div',
      { class: 'fields' },
      field('algorithm', i.algorithm, 'training_config.algorithm'),
      field('total_episodes', i.episodes, 'training_config.total_episodes'),
      field('parallel_envs', i.envs, 'training_config.parallel_envs'),
      field('hyperparameters (key=value per line)', i.hyper, 'training_config.hyperparameters', true),
    ),
  );
  const resourcesSet = h(
    'fieldset',
    null,
    h('legend', null, 'resource_requirements'),
    h('div', { class: 'fields' }, field('training_gpus', i.gpus, 'resource_requirements.training_gpus'), field('training_memory_gb', i.mem, 'resource_requirements.training_memory_gb'), field('isaac_sim_instances', i.sims, 'resource_requirements.isaac_sim_instances')),
  );
  const labelsSet = h('fieldset', null, h('legend', null, 'labels (optional)'), h('div', { class: 'fields' }, field('only instances with these labels (key=value per line)', i.labels, 'labels', true)));
  const hybridSet = h(
    'fieldset',
    null,
    h('legend', null, 'hybrid_config'),
    h(
      'div',
      { class: 'fields' },
      field('initial_controller', i.initial, 'hybrid_config.initial_controller'),
      field('human_idle_timeout_seconds', i.idle, 'hybrid_config.human_idle_timeout_seconds'),
      h('label', { class: 'field check' }, i.record, 'record_demonstrations'),
      h('label', { class: 'field check' }, i.force, 'allow_force_takeover'),
    ),
  );

  const form = h(
    'form',
    { method: 'dialog', novalidate: true },
    h('header', null, h('h2', null, 'New session'), modeSeg),
    h('div', { class: 'content' }, h('div', { class: 'fields', style: 'margin-bottom:14px' }, field('session_id', i.id, 'session_id', true)), sceneSet, streamSet, trainingSet, resourcesSet, hybridSet, labelsSet),
    h('footer', null, errEl, h('button', { type: 'button', onClick: () => dialog.close() }, 'Cancel'), submit),
  );
  const dialog = h('dialog', { 'data-testid': 'create-dialog', 'aria-label': 'New session' }, form);

  const setMode = (m: Mode) => {
    mode = m;
    if (!i.id.value || /^(manual|training|hybrid)-[a-z0-9]{6}$/.test(i.id.value)) i.id.value = randomId(m);
    streamSet.hidden = m === 'TRAINING';
    trainingSet.hidden = m === 'MANUAL';
    resourcesSet.hidden = m === 'MANUAL';
    hybridSet.hidden = m !== 'HYBRID';
    if (m === 'HYBRID' && i.sims.value === '4') i.sims.value = '2';
    if (m === 'TRAINING' && i.sims.value === '2') i.sims.value = '4';
    mount(
      modeSeg,
      (['MANUAL', 'TRAINING', 'HYBRID'] as const).map((x) => h('button', { type: 'button', class: x === m ? 'on' : '', 'data-mode': x, role: 'tab', 'aria-selected': String(x === m), onClick: () => setMode(x) }, x)),
    );
    clearErrors();
  };

  const clearErrors = () => {
    errEl.textContent = '';
    for (const f of form.querySelectorAll('.field.bad')) {
      f.classList.remove('bad');
      f.querySelector('.why')!.textContent = '';
    }
  };

  const showFieldError = (path: string, why: string): boolean => {
    // The server names fields by their proto path; the closest field shown gets the message.
    let p = path;
    for (;;) {
      const f = form.querySelector(`[data-field="${CSS.escape(p)}"]`);
      if (f && !(f.closest('fieldset') as HTMLElement | null)?.hidden) {
        f.classList.add('bad');
        f.querySelector('.why')!.textContent = why;
        return true;
      }
      const parent = p.replace(/\[\d+\]$/, '');
      if (parent !== p) p = parent;
      else if (p.includes('.')) p = p.slice(0, p.lastIndexOf('.'));
      else return false;
    }
  };

  const sceneConfig = () => {
    let obstacles: unknown;
    try {
      obstacles = JSON.parse(i.obstacles.value.trim() || '[]');
      if (!Array.isArray(obstacles)) throw new Error('not a list');
    } catch (e) {
      throw Object.assign(new Error(`obstacles: ${(e as Error).message}`), { field: 'scene_config.obstacles' });
    }
    return {
      robotUrdf: i.robot.value,
      obstacles: obstacles as never[],
      startPosition: { x: Number(i.sx.value), y: Number(i.sy.value), z: Number(i.sz.value) },
      goalPosition: i.goalOn.checked ? { x: Number(i.gx.value), y: Number(i.gy.value), z: Number(i.gz.value) } : undefined,
    };
  };
  const pairs = (el: HTMLTextAreaElement, name: string) => {
    try {
      return parsePairs(el.value);
    } catch (e) {
      throw Object.assign(new Error(`${name}: ${(e as Error).message}`), { field: name });
    }
  };
  const streamConfig = () => ({ width: Number(i.width.value), height: Number(i.height.value), fps: Number(i.fps.value), transport: i.transport.value });
  const trainingConfig = () => ({
    algorithm: i.algorithm.value,
    totalEpisodes: Number(i.episodes.value),
    parallelEnvs: Number(i.envs.value),
    hyperparameters: pairs(i.hyper, 'training_config.hyperparameters'),
  });
  const requirements = () => ({
    trainingGpus: Number(i.gpus.value),
    trainingMemoryGb: Number(i.mem.value),
    isaacSimInstances: Number(i.sims.value),
    labels: pairs(i.labels, 'labels'),
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    submit.disabled = true;
    const sessionId = i.id.value.trim();
    try {
      let msg = '';
      if (mode === 'MANUAL') {
        const r = await api.createSession({ sessionId, mode: SessionMode.MANUAL, sceneConfig: sceneConfig(), streamConfig: streamConfig(), labels: pairs(i.labels, 'labels') });
        msg = `${r.sessionId} on ${r.instanceId}`;
      } else if (mode === 'TRAINING') {
        const r = await api.createTrainingSession({ sessionId, mode: SessionMode.TRAINING, sceneConfig: sceneConfig(), trainingConfig: trainingConfig(), resourceRequirements: requirements() });
        msg = `${r.sessionId}: ${r.trainingInstanceId} + ${r.isaacInstanceIds.length} simulators`;
      } else {
        const r = await api.createHybridSession({
          sessionId,
          mode: SessionMode.HYBRID,
          sceneConfig: sceneConfig(),
          trainingConfig: trainingConfig(),
          resourceRequirements: requirements(),
          streamConfig: streamConfig(),
          hybridConfig: { initialController: i.initial.value.trim(), recordDemonstrations: i.record.checked, humanIdleTimeoutSeconds: Number(i.idle.value), allowForceTakeover: i.force.checked },
        });
        msg = `${r.sessionId}: ${r.trainingInstanceId} + ${r.isaacInstanceIds.length} simulators`;
      }
      toast(`Created ${msg}`);
      dialog.close();
      onCreated(sessionId);
    } catch (e) {
      const local = (e as { field?: string }).field;
      if (local) {
        showFieldError(local, (e as Error).message);
        errEl.textContent = (e as Error).message;
      } else {
        const v = describeError(e);
        for (const [f, why] of v.fields) showFieldError(f, why);
        errEl.textContent = `${v.code}: ${v.message}`;
      }
    } finally {
      submit.disabled = false;
    }
  });

  setMode('MANUAL');
  return {
    el: dialog,
    open(m?: Mode) {
      if (m) setMode(m);
      i.id.value = randomId(mode);
      clearErrors();
      dialog.showModal();
      i.id.focus();
      i.id.select();
    },
  };
}

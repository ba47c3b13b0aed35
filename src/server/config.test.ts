import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { DEFAULT_CONFIG, loadConfig } from './config.js';
import { startNeuro } from './neuro.js';
import { tempDir } from '../testing/processes.js';

describe('configuration', () => {
  it('layers defaults, the file, the environment and flags in that order', () => {
    const dir = tempDir('neuro-config-');
    const file = join(dir, 'neuro.json');
    writeFileSync(file, JSON.stringify({ grpc: { port: 6000 }, http: { port: 6001 }, heartbeatGraceMs: 5000, schedulerPolicy: 'pack' }));
    const c = loadConfig({ file, env: { NEURO_HTTP_PORT: '7001', NEURO_TOKEN: 'env-token' }, overrides: { http: { port: 9001 } } });
    assert.equal(c.grpc.port, 6000, 'file');
    assert.equal(c.http.port, 9001, 'flag over environment over file');
    assert.equal(c.heartbeatGraceMs, 5000);
    assert.equal(c.schedulerPolicy, 'pack');
    assert.equal(c.callerToken, 'env-token');
    assert.equal(c.grpc.maxMessageBytes, DEFAULT_CONFIG.grpc.maxMessageBytes, 'defaults stay');
    assert.equal(c.advertiseAddress, '127.0.0.1:6000');
  });

  it('refuses unknown settings and bad numbers, naming them', () => {
    const dir = tempDir('neuro-config-');
    const file = join(dir, 'neuro.json');
    writeFileSync(file, JSON.stringify({ grpc: { prot: 1 } }));
    assert.throws(() => loadConfig({ file, env: {} }), /unknown setting "prot"/);
    assert.throws(() => loadConfig({ env: { NEURO_GRPC_PORT: 'abc' } }), /NEURO_GRPC_PORT/);
    assert.throws(() => loadConfig({ env: { NEURO_TLS_CERT: '/x.pem' } }), /TLS needs both/);
  });

  it('lists static instances from the file in the pool before they register', async () => {
    const dir = tempDir('neuro-config-');
    const c = loadConfig({
      env: {},
      overrides: {
        grpc: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        dataDir: dir,
        staticInstances: [{ id: 'isaac-static-1', kind: 'simulator', address: '10.0.0.7:50061', host: 'gpu-node-7', zone: 'rack-2', gpus: ['GPU-0', 'GPU-1'] }],
      },
    });
    const server = await startNeuro(c, pino({ level: 'silent' }));
    try {
      const i = server.orchestrator.engine.pool.get('isaac-static-1');
      assert.ok(i);
      assert.equal(i.static, true);
      assert.equal(i.spec.host, 'gpu-node-7');
      assert.deepEqual(i.spec.gpus.map((g) => g.id), ['GPU-0', 'GPU-1']);
      assert.equal(i.health, 'joining', 'allocated only once it heartbeats');
    } finally {
      await server.stop();
    }
  });
});

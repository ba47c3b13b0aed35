import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUrdf, parseXml } from './urdf.js';

test('parseXml reads nested, self-closing and quoted elements and skips prolog, comments and doctype', () => {
  const root = parseXml(`<?xml version="1.0"?>
    <!DOCTYPE robot>
    <!-- a <comment> with markup -->
    <robot name='r &amp; d'>
      <link name="a"/>
      <joint name="j" type="fixed"><parent link="a"/><child link="b"/></joint>
      <![CDATA[ <ignored/> ]]>
    </robot>`);
  assert.equal(root.name, 'robot');
  assert.equal(root.attrs.name, 'r & d');
  assert.deepEqual(root.children.map((c) => c.name), ['link', 'joint']);
  assert.deepEqual(root.children[1]!.children.map((c) => c.attrs.link), ['a', 'b']);
});

test('parseXml rejects malformed documents with a line number', () => {
  assert.throws(() => parseXml('<robot><link></robot>'), /malformed XML at line 1: <\/robot> does not close <link>/);
  assert.throws(() => parseXml('<robot>\n<link name="a">'), /line 2: <link> is not closed/);
  assert.throws(() => parseXml('<a/><b/>'), /more than one root/);
  assert.throws(() => parseXml('just text'), /no root element/);
  assert.throws(() => parseXml('<a x=1/>'), /unexpected/);
});

test('parseUrdf reads joints with origin, axis and limits, normalising the axis', () => {
  const urdf = parseUrdf(`<robot name="arm">
    <link name="base"/><link name="l1"/>
    <joint name="j1" type="revolute">
      <parent link="base"/><child link="l1"/>
      <origin xyz="0 0 0.5" rpy="0 1.5 0"/>
      <axis xyz="0 0 2"/>
      <limit lower="-1" upper="1" effort="1" velocity="1"/>
    </joint>
  </robot>`);
  assert.equal(urdf.name, 'arm');
  assert.deepEqual(urdf.links, ['base', 'l1']);
  const j = urdf.joints[0]!;
  assert.deepEqual(
    { type: j.type, parent: j.parent, child: j.child, origin: j.origin, axis: j.axis, limit: j.limit },
    { type: 'revolute', parent: 'base', child: 'l1', origin: { xyz: [0, 0, 0.5], rpy: [0, 1.5, 0] }, axis: [0, 0, 1], limit: { lower: -1, upper: 1 } },
  );
});

test('parseUrdf defaults a missing origin and axis as the URDF spec does', () => {
  const urdf = parseUrdf('<robot name="r"><joint name="j" type="continuous"><parent link="a"/><child link="b"/></joint></robot>');
  assert.deepEqual(urdf.joints[0]!.origin, { xyz: [0, 0, 0], rpy: [0, 0, 0] });
  assert.deepEqual(urdf.joints[0]!.axis, [1, 0, 0]);
  assert.equal(urdf.joints[0]!.limit, undefined);
});

test('parseUrdf names what is wrong', () => {
  assert.throws(() => parseUrdf('<sdf/>'), /expected <robot>/);
  assert.throws(() => parseUrdf('<robot><joint name="j" type="hinge"><parent link="a"/><child link="b"/></joint></robot>'), /joint j: unknown type "hinge"/);
  assert.throws(() => parseUrdf('<robot><joint name="j" type="fixed"><child link="b"/></joint></robot>'), /joint j: needs <parent link>/);
  assert.throws(() => parseUrdf('<robot><joint name="j" type="revolute"><parent link="a"/><child link="b"/></joint></robot>'), /needs <limit>/);
  assert.throws(
    () => parseUrdf('<robot><joint name="j" type="fixed"><parent link="a"/><child link="b"/><origin xyz="0 0"/></joint></robot>'),
    /joint j origin xyz: expected three numbers/,
  );
  assert.throws(
    () => parseUrdf('<robot><joint name="j" type="prismatic"><parent link="a"/><child link="b"/><limit lower="1" upper="0"/></joint></robot>'),
    /upper 0 < lower 1/,
  );
});

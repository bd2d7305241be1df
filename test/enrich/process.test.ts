/**
 * enrich/process: a cgroup path → its container id and pod uid (the runtimes' naming), and a cgroup
 * id → its path through a real directory tree standing for the cgroup2 mount (a cgroup id is its
 * directory's inode) and a /proc/<pid>/cgroup file.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bareContainerId, CgroupResolver, cgroup2Mount, containerOfPath, unifiedPath } from '../../src/enrich/process/index.js';

const ID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);
const UID = '6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';

describe('containerOfPath', () => {
  it.each([
    ['containerd, systemd driver', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-${ID}.scope`, { containerId: ID, podUid: UID }],
    ['CRI-O', `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replaceAll('-', '_')}.slice/crio-${ID}.scope`, { containerId: ID, podUid: UID }],
    ['cgroupfs driver', `/kubepods/burstable/pod${UID}/${ID}`, { containerId: ID, podUid: UID }],
    ['guaranteed pod, systemd driver', `/kubepods.slice/kubepods-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-${ID}.scope`, { containerId: ID, podUid: UID }],
    ['Docker, systemd driver', `/system.slice/docker-${ID}.scope`, { containerId: ID }],
    ['Docker, cgroupfs driver', `/docker/${ID}`, { containerId: ID }],
    ['Podman', `/machine.slice/libpod-${ID}.scope/container`, { containerId: ID }],
    ['a pod\'s own slice', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll('-', '_')}.slice`, { podUid: UID }],
    ['a host service', '/system.slice/ssh.service', {}],
    ['the root', '/', {}],
    ['CRI-O\'s monitor is not the container', `/kubepods.slice/crio-conmon-${ID}.scope`, {}],
    ['too short to be an id', `/docker/${ID.slice(1)}`, {}],
  ])('%s', (_what, path, want) => {
    expect(containerOfPath(path)).toEqual(want);
  });

  it('takes the runtime prefix off the API\'s container ids', () => {
    expect(bareContainerId(`containerd://${ID}`)).toBe(ID);
    expect(bareContainerId(`cri-o://${ID.toUpperCase()}`)).toBe(ID);
    expect(bareContainerId(ID)).toBe(ID);
    expect(bareContainerId(undefined)).toBeUndefined();
    expect(bareContainerId('containerd://')).toBeUndefined();
  });
});

describe('cgroup files', () => {
  it('finds the cgroup2 mount in mountinfo, hybrid or unified', () => {
    const hybrid = [
      '25 1 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
      '26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
      '27 25 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory',
    ].join('\n');
    expect(cgroup2Mount(hybrid)).toBe('/sys/fs/cgroup/unified');
    expect(cgroup2Mount('30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw')).toBe('/sys/fs/cgroup');
    expect(cgroup2Mount('27 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory')).toBeUndefined();
  });

  it('reads the v2 line of /proc/<pid>/cgroup', () => {
    expect(unifiedPath('12:memory:/docker/x\n0::/system.slice/a.scope\n')).toBe('/system.slice/a.scope');
    expect(unifiedPath('12:memory:/docker/x\n')).toBeUndefined();
  });
});

describe('CgroupResolver over a directory tree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-cgroup-'));
  const root = join(dir, 'cgroup');
  const proc = join(dir, 'proc');
  const rel = `/kubepods.slice/kubepods-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-${ID}.scope`;
  mkdirSync(join(root, rel), { recursive: true });
  mkdirSync(join(root, 'system.slice/ssh.service'), { recursive: true });
  mkdirSync(join(proc, '4242'), { recursive: true });
  writeFileSync(join(proc, '4242/cgroup'), `0::${rel}\n`);
  const ino = statSync(join(root, rel)).ino;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('through the process\'s cgroup file, checked by the directory\'s inode, then from its cache', () => {
    const r = new CgroupResolver({ root, procRoot: proc });
    expect(r.resolve(ino, 4242)).toEqual({ containerId: ID, podUid: UID });
    expect(r.resolve(ino, 4242)).toEqual({ containerId: ID, podUid: UID });
    expect(r.counters).toMatchObject({ lookups: 2, hits: 1, procReads: 1, walks: 0 });
  });

  it('by a walk when the process is gone, or its file names another cgroup', () => {
    const r = new CgroupResolver({ root, procRoot: proc });
    expect(r.resolve(ino, 999_999)).toEqual({ containerId: ID, podUid: UID });
    const ssh = statSync(join(root, 'system.slice/ssh.service')).ino;
    expect(r.resolve(ssh, 4242)).toEqual({});
    expect(r.counters.walks).toBe(1);
  });

  it('an id below the last walk\'s largest waits rescanMs for another walk; one above it is walked for at once (a newer cgroup)', () => {
    const r = new CgroupResolver({ root, procRoot: proc, rescanMs: 60_000 });
    r.resolve(1, undefined); // a walk that finds nothing with inode 1
    expect(r.counters.walks).toBe(1);
    expect(r.resolve(2)).toEqual({});
    expect(r.counters.walks).toBe(1);
    // Higher than any inode walked: made since, so looked for at once.
    const max = Math.max(...[rel, 'system.slice/ssh.service', '/'].map((d) => statSync(join(root, d)).ino));
    expect(r.resolve(max + 1_000_000)).toEqual({});
    expect(r.counters.walks).toBe(2);
    // And not again for the same id, until rescanMs.
    expect(r.resolve(max + 1_000_000)).toEqual({});
    expect(r.counters.walks).toBe(2);
    const again = new CgroupResolver({ root, procRoot: proc, rescanMs: 0 });
    mkdirSync(join(root, `system.slice/docker-${ID}.scope`));
    expect(again.resolve(statSync(join(root, `system.slice/docker-${ID}.scope`)).ino)).toEqual({ containerId: ID });
  });
});

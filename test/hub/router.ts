import { execFileSync } from 'node:child_process';
import type { SimNode } from '../agent/netns.js';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/**
 * Two (or more) simulated nodes joined the way a cluster's nodes are: a router between their pod
 * networks. The router is a network namespace of its own with a leg on each node's bridge (the
 * node's subnet .254), forwarding in that namespace only, so the host's own forwarding and
 * firewall are left alone. Every pod gets a default route through its node's leg: a packet from a
 * pod of one node to a pod of another crosses both bridges, so both nodes' agents see it.
 */
export class Router {
  readonly name: string;

  constructor(readonly nodes: SimNode[]) {
    this.name = `twrt${process.pid % 10000}${Math.floor(Math.random() * 90 + 10)}`;
    try {
      ip('netns', 'add', this.name);
      ip('-n', this.name, 'link', 'set', 'lo', 'up');
      nodes.forEach((n, k) => {
        const leg = `${n.bridge.slice(0, 11)}rt`;
        const net = n.subnet.replace(/\.0\/24$/, '');
        ip('link', 'add', leg, 'type', 'veth', 'peer', 'name', `leg${k}`, 'netns', this.name);
        ip('link', 'set', leg, 'master', n.bridge);
        ip('link', 'set', leg, 'up');
        ip('-n', this.name, 'addr', 'add', `${net}.254/24`, 'dev', `leg${k}`);
        ip('-n', this.name, 'link', 'set', `leg${k}`, 'up');
        for (const p of n.pods) ip('-n', p.name, 'route', 'add', 'default', 'via', `${net}.254`);
      });
      execFileSync('ip', ['netns', 'exec', this.name, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    } catch (e) {
      this.down();
      throw e;
    }
  }

  down(): void {
    // The legs go with the namespace (a veth pair dies with either end).
    try { ip('netns', 'del', this.name); } catch { /* already gone */ }
  }
}

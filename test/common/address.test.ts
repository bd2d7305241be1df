import { describe, expect, it } from 'vitest';
import { endpoint, hostPort } from '../../src/common/address.js';
import { ServiceNames } from '../../src/verify/services.js';

describe('one address formatter', () => {
  it('writes IPv4 as ip:port and IPv6 in brackets', () => {
    expect(endpoint({ ip: '10.0.0.1', port: 80 })).toBe('10.0.0.1:80');
    expect(endpoint({ ip: '::1', port: 51164 })).toBe('[::1]:51164');
    expect(hostPort('fe80::1', '8080')).toBe('[fe80::1]:8080');
  });

  it('names IPv6 services given as [v6]:port, and writes unnamed ones in brackets', () => {
    const names = new ServiceNames({ api: ['[::1]:8080'] });
    expect(names.name({ ip: '::1', port: 8080 })).toBe('api');
    expect(names.nameOfIp('::1')).toBe('api');
    expect(names.name({ ip: '::1', port: 9090 })).toBe('[::1]:9090');
    expect(names.matches({ ip: '::1', port: 9090 }, '[::1]:9090')).toBe(true);
  });
});

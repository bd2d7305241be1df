import { describe, expect, it } from 'vitest';
import { bytes, goDuration, millicores, parseQuantity } from '../../../src/enrich/usage/index.js';

describe('Kubernetes quantities', () => {
  it('CPU in millicores: the forms metrics-server and people write', () => {
    expect(millicores('250m')).toBe(250);
    expect(millicores('12345n')).toBeCloseTo(0.012345, 9);
    expect(millicores('1500u')).toBeCloseTo(1.5, 9);
    expect(millicores('2')).toBe(2000);
    expect(millicores('0.5')).toBe(500);
    expect(millicores('.5')).toBe(500);
    expect(millicores('0')).toBe(0);
  });

  it('memory in bytes: binary and decimal suffixes, exponents, fractions rounded up', () => {
    expect(bytes('128Mi')).toBe(128 * 1024 * 1024);
    expect(bytes('1Gi')).toBe(1073741824);
    expect(bytes('4920Ki')).toBe(4920 * 1024);
    expect(bytes('1G')).toBe(1e9);
    expect(bytes('1k')).toBe(1000);
    expect(bytes('1e3')).toBe(1000);
    expect(bytes('1E3')).toBe(1000);
    // "E" alone is the exa suffix, not an exponent.
    expect(bytes('2E')).toBe(2e18);
    expect(bytes('1.5')).toBe(2);
    expect(bytes('0.5Ki')).toBe(512);
    expect(bytes(1024)).toBe(1024);
  });

  it('what is not a quantity is undefined (a counted skip for the caller), never a throw', () => {
    for (const bad of ['', 'abc', '12Xi', '1.2.3', '-5Mi', '1e', 'Mi', ' 1Mi', '1Mi ', '1 Mi', 'NaN', 'Infinity', '1e999', null, undefined, {}, -1, '9'.repeat(100)]) {
      expect(parseQuantity(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it('metrics-server windows (Go durations) in seconds', () => {
    expect(goDuration('30s')).toBe(30);
    expect(goDuration('15.018s')).toBeCloseTo(15.018, 6);
    expect(goDuration('1m0s')).toBe(60);
    expect(goDuration('1m30s')).toBe(90);
    expect(goDuration('500ms')).toBe(0.5);
    expect(goDuration('30')).toBeUndefined();
    expect(goDuration('')).toBeUndefined();
  });
});

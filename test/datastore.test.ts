// The datastore room's run-time parts that need no server: the breaker in front of an unreachable PostgreSQL and
// the password verifier. (Provisioning and dropping run against a real server in test/cluster.)
import { createHash, createHmac, pbkdf2Sync } from 'crypto';
import { PostgresUnreachableError, ServerBreaker } from '../lib/datastore/connect';
import { DatabaseRefusedError, provisionedDigest, scramVerifier } from '../lib/datastore/provision';

describe('ServerBreaker', () => {
  test('after an unreachable server, calls for it fail at once until the hold passes; other servers are asked', async () => {
    let now = 1_000;
    const breaker = new ServerBreaker(5_000, () => now);
    let calls = 0;
    const down = () => {
      calls++;
      return Promise.reject(new PostgresUnreachableError('getaddrinfo ENOTFOUND pg'));
    };
    await expect(breaker.run('pg:5432', down)).rejects.toThrow('getaddrinfo ENOTFOUND pg');
    now += 4_999;
    await expect(breaker.run('pg:5432', down)).rejects.toThrow('getaddrinfo ENOTFOUND pg (asked again after 5000 ms)');
    expect(calls).toBe(1);
    await expect(breaker.run('other:5432', () => Promise.resolve('ok'))).resolves.toBe('ok');
    now += 1;
    await expect(breaker.run('pg:5432', () => Promise.resolve('up'))).resolves.toBe('up');
    // Up again: the next failure is asked, not held.
    await expect(breaker.run('pg:5432', down)).rejects.toThrow('getaddrinfo ENOTFOUND pg');
    expect(calls).toBe(2);
  });

  test("one tenant's refusal or SQL error does not hold the server for the others", async () => {
    const breaker = new ServerBreaker(5_000, () => 0);
    await expect(
      breaker.run('pg:5432', () => Promise.reject(new DatabaseRefusedError('role grafana exists'))),
    ).rejects.toThrow('role grafana exists');
    await expect(breaker.run('pg:5432', () => Promise.resolve('asked'))).resolves.toBe('asked');
  });
});

describe('what the controller sends and keeps', () => {
  test('the SCRAM-SHA-256 verifier is RFC 5802 StoredKey and ServerKey of the password, in PostgreSQL form', () => {
    const salt = Buffer.from('0123456789abcdef');
    const v = scramVerifier('pencil', salt, 4096);
    const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
    const stored = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
    const server = createHmac('sha256', salted).update('Server Key').digest();
    expect(v).toBe(
      `SCRAM-SHA-256$4096:${salt.toString('base64')}$${stored.toString('base64')}:${server.toString('base64')}`,
    );
    expect(v).not.toContain('pencil');
    // A new salt each time: the same password never gives the same stored text.
    expect(scramVerifier('pencil')).not.toBe(scramVerifier('pencil'));
  });

  test('the provisioned record changes with the password, the plane and the role limits, and does not hold the password', () => {
    const a = provisionedDigest({ mark: 'kubeflex:uid-1', password: 'pw' });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(provisionedDigest({ mark: 'kubeflex:uid-1', password: 'pw2' })).not.toBe(a);
    expect(provisionedDigest({ mark: 'kubeflex:uid-2', password: 'pw' })).not.toBe(a);
    expect(provisionedDigest({ mark: 'kubeflex:uid-1', password: 'pw' })).toBe(a);
    // What controllers before the connection limit of 45 recorded: their roles are provisioned again (new limit).
    expect(a).not.toBe(createHash('sha256').update('kubeflex:uid-1\npw').digest('hex'));
  });
});

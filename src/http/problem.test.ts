import { describe, expect, it } from 'vitest';
import { WardenError } from '../core/errors.js';
import { problemOf } from './problem.js';

describe('problemOf', () => {
  it('keeps RFC 9457 members and the contract code over extension members', () => {
    const err = new WardenError('approval_pending', 'waiting', { extra: { status: 'pending', code: 'other', type: 'x', approval_id: 'abc' } });
    const p = problemOf(err, 'req-1');
    expect(p).toMatchObject({
      status: 202,
      code: 'approval_pending',
      type: 'https://warden.dev/problems/approval_pending',
      approval_id: 'abc',
      request_id: 'req-1',
    });
  });

  it('hides detail and extras of internal errors', () => {
    const p = problemOf(new WardenError('internal', 'db password is hunter2', { extra: { secret: 'x' } }));
    expect(p.detail).toBe('internal error');
    expect(p).not.toHaveProperty('secret');
  });
});

import { describe, expect, it } from 'vitest';
import type { Config } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { createMemoryStore } from '../store/memory.js';
import { activitySource } from './activity-source.js';

const config = (decisions?: object) => ({ audit: { decisions }, console: { activity_interval: 200 } }) as unknown as Config;
const logger = createLogger({ level: 'silent' });

describe('activity source', () => {
  it('keeps no ring (and so writes nothing per request) when nobody can sign in to read it', () => {
    const got = activitySource(config(), createMemoryStore(), logger, false);
    expect(got.ring).toBeUndefined();
    expect(got.source).toBeUndefined();
  });

  it('keeps the per-user ring in the store when people sign in and no decision-log file is readable', () => {
    const got = activitySource(config(), createMemoryStore(), logger, true);
    expect(got.ring).toBeDefined();
    expect(got.source?.kind).toBe('store');
  });

  it('reads the decision log back instead when this process writes its file', () => {
    const got = activitySource(config({ sink: 'file', path: '/nonexistent/decisions.jsonl', keep: 3 }), createMemoryStore(), logger, true);
    expect(got.ring).toBeUndefined();
    expect(got.source?.kind).toBe('decision-log');
  });
});

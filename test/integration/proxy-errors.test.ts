import express from 'express';
import request from 'supertest';
import { SseError } from '../../src/protocol/errors';
import { sseProxy } from '../../src/upstream/proxy';

describe('sseProxy: an SseError thrown by target(req) is answered like every other route', () => {
  it('goes through sendError: its status, Cache-Control: no-store and the JSON body', async () => {
    const app = express();
    app.get(
      '/p',
      sseProxy({
        target: () => {
          throw new SseError('ERR_SSE_BAD_REQUEST', 'workspace_id is required.', 400);
        },
      }),
    );
    const res = await request(app).get('/p').expect(400);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ error: { code: 'ERR_SSE_BAD_REQUEST', message: 'workspace_id is required.' } });
  });
});

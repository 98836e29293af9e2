import express, { type NextFunction, type Request, type Response } from 'express';
// The README recipe's imports, from the package root.
import { isChannel, isSegment, SseError, sseProxy } from '../../src/index';
import type { Logger } from '../../src/types';
import { startServer, type TestServer } from '../helpers/server';
import { openStream } from '../helpers/sse-client';
import { type FakeUpstream, startUpstream } from '../helpers/upstream';

const quiet: Logger = { warn() {}, error() {} };
let upstream: FakeUpstream;
let bff: TestServer;

// The README's sseProxy recipe (notes/upstream-README.md), with stand-ins for the BFF's own middleware:
// the user may see workspace ws1 only.
function requireUser(req: Request, _res: Response, next: NextFunction): void {
  (req as Request & { user?: unknown }).user = { id: 'alice', workspaces: ['ws1'] };
  next();
}
function requireWorkspaceAccess(req: Request, res: Response, next: NextFunction): void {
  if (req.query.workspace_id !== 'ws1') {
    res.status(403).json({ error: { code: 'ERR_SSE_FORBIDDEN', message: 'No access.' } });
    return;
  }
  next();
}

beforeAll(async () => {
  upstream = await startUpstream();
  const L5_ETL_URL = upstream.url;
  const serviceToken = async () => 'service-token';
  const app = express();
  app.get(
    '/api/dapadmin/l5-etl/sse/logs/stream',
    requireUser,
    requireWorkspaceAccess,
    sseProxy({
      target: (req) => {
        const { workspace_id: ws, workflow_id: wf } = req.query;
        // Each value must be exactly one channel segment: `wf1,logs:etl:ws2:*` would otherwise add
        // channels of another workspace to the upstream's subscription.
        if (!isSegment(ws) || !isSegment(wf)) {
          throw new SseError(
            'ERR_SSE_BAD_REQUEST',
            'workspace_id and workflow_id must each be 1-128 characters of [A-Za-z0-9_.-].',
            400,
          );
        }
        const url = new URL('/logs/stream', L5_ETL_URL);
        url.searchParams.set('channels', `logs:etl:${ws}:${wf}`);
        return url;
      },
      headers: async () => ({ authorization: `Bearer ${await serviceToken()}` }),
      logger: quiet,
    }),
  );
  bff = await startServer(app);
});

afterAll(async () => {
  await bff.close();
  await upstream.stop();
});

const route = '/api/dapadmin/l5-etl/sse/logs/stream';

describe('the README sseProxy recipe', () => {
  it.each([
    'workspace_id=ws1&workflow_id=wf1%2Clogs%3Aetl%3Aws2%3A*',
    'workspace_id=ws1&workflow_id=wf1%3A*',
    'workspace_id=ws1&workflow_id=wf1&workflow_id=wf2',
    'workspace_id=ws1&workflow_id[a]=wf1',
    'workspace_id=ws1',
  ])('refuses %s with a 400 and never calls upstream', async (query) => {
    const before = upstream.requests.length;
    const stream = await openStream(`${bff.url}${route}?${query}`, { ready: false });
    stream.close();
    expect(stream.status).toBe(400);
    expect(stream.body).toMatchObject({ error: { code: 'ERR_SSE_BAD_REQUEST' } });
    expect(upstream.requests.length).toBe(before);
  });

  it('forwards a valid request as exactly one channel', async () => {
    const before = upstream.requests.length;
    const stream = await openStream(`${bff.url}${route}?workspace_id=ws1&workflow_id=wf1`, { ready: false });
    try {
      await upstream.waitFor((u) => u.requests.length === before + 1);
      const seen = upstream.requests[before];
      expect(new URL(seen?.url ?? '', upstream.url).searchParams.get('channels')).toBe('logs:etl:ws1:wf1');
      expect(seen?.headers.authorization).toBe('Bearer service-token');
    } finally {
      stream.close();
    }
  });
});

describe('isChannel and isSegment, exported from the package root', () => {
  it('take any value and pass only strings of the grammar', () => {
    expect([isSegment('wf1'), isSegment('wf1,logs'), isSegment('a:b'), isSegment('*'), isSegment('')]).toEqual([
      true,
      false,
      false,
      false,
      false,
    ]);
    expect([isSegment(['wf1']), isSegment(undefined), isSegment(1), isChannel({})]).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect([isChannel('logs:etl:ws1:wf1'), isChannel('logs:etl:*'), isChannel('logs,alerts')]).toEqual([
      true,
      false,
      false,
    ]);
  });
});

import { createPublisher } from '../../src';
import { closeAll, startGateway } from '../helpers/gateway';
import { dataEvents } from '../helpers/sse-client';

afterEach(closeAll);

type Channels = { logs: { line: string }; metrics: { value: number } };

test('a typed publisher publishes through its gateway (namespace checked) or its bus', async () => {
  const { gateway, open } = await startGateway({ channels: ['logs', 'metrics'] });
  const stream = await open('channels=logs:a,metrics:a');
  const viaGateway = createPublisher<Channels>(gateway);
  const viaBus = createPublisher<Channels>(gateway.bus);
  await viaGateway.publish('logs:a', { line: 'one' });
  await viaBus.publish('metrics:a', { value: 2 });
  expect(dataEvents(await stream.take(2)).map((e) => e.data)).toEqual([{ line: 'one' }, { value: 2 }]);
  const untypedNamespace = createPublisher<{ nope: number }>(gateway);
  await expect(untypedNamespace.publish('nope:x', 1)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL' });
});

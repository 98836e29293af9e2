/**
 * Type tests (compiled by `npm run typecheck`, never run): the channel map types server-side publishing.
 */
import { createPublisher, type SseGateway } from '../../src';

type Channels = { logs: { level: string; message: string }; metrics: { value: number } };
declare const gateway: SseGateway;

const events = createPublisher<Channels>(gateway);
void events.publish('metrics:ws1', { value: 3 }).then((event) => event.data.value.toFixed());
void events.publish('logs:ws1:wf2', { level: 'INFO', message: 'done' });
// @ts-expect-error a metrics payload has no `level`
void events.publish('metrics:ws1', { level: 'x' });
// @ts-expect-error `alerts` is not a namespace of the map
void events.publish('alerts:u1', { value: 1 });
void createPublisher<Channels>().publish('metrics:ws2', { value: 1 });

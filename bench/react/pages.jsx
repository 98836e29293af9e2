// The two pages the React bench compares: the bindings, and a hand-written single EventSource with
// useState per component. Both render COMPONENTS lists of the newest MAX_ITEMS messages.
import { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { SSEProvider, useSSESubscription } from '../../src/react';

const COMPONENTS = 10;
const MAX_ITEMS = 200;
const channels = Array.from({ length: COMPONENTS }, (_, i) => `logs:bench:c${i}`);
window.bench = { renders: 0, events: 0 };

function List({ data }) {
  window.bench.renders++;
  return (
    <ol>
      {data.slice(-20).map((item) => (
        <li key={item.n}>{item.n}</li>
      ))}
    </ol>
  );
}

function Bound({ channel }) {
  const { data } = useSSESubscription(channel, {
    maxItems: MAX_ITEMS,
    transform: (payload) => {
      window.bench.events++;
      return payload;
    },
  });
  return <List data={data} />;
}

const source =
  new URLSearchParams(location.search).get('page') === 'baseline'
    ? new EventSource(`/events?channels=${channels.join(',')}`)
    : undefined;

function Baseline({ channel }) {
  const [data, setData] = useState([]);
  useEffect(() => {
    const onEvent = (event) => {
      const message = JSON.parse(event.data);
      if (message.channel !== channel) return;
      window.bench.events++;
      setData((previous) => [...previous, message.data].slice(-MAX_ITEMS));
    };
    source.addEventListener('logs', onEvent);
    return () => source.removeEventListener('logs', onEvent);
  }, [channel]);
  return <List data={data} />;
}

const root = createRoot(document.getElementById('root'));
if (source) root.render(channels.map((channel) => <Baseline key={channel} channel={channel} />));
else
  root.render(
    <SSEProvider url="/events" shareAcrossTabs={false}>
      {channels.map((channel) => (
        <Bound key={channel} channel={channel} />
      ))}
    </SSEProvider>,
  );

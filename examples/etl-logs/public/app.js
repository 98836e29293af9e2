// One EventSource per tab carries every channel the user may see; the browser reconnects with
// Last-Event-ID by itself and the gateway replays what was missed.

const $ = (id) => document.getElementById(id);

async function main() {
  const me = await fetch('/api/me');
  if (!me.ok) return;
  const user = await me.json();
  $('who').textContent = `signed in as ${user.name}`;
  $('workspaces').textContent = '';
  const lists = {};
  for (const [workspace, workflows] of Object.entries(user.workflows)) {
    const section = document.createElement('section');
    section.className = 'workspace';
    section.dataset.workspace = workspace;
    section.innerHTML = `<h2>Workspace ${workspace}</h2><small>${workflows.join(', ')}</small><ol></ol>`;
    $('workspaces').append(section);
    lists[workspace] = section.querySelector('ol');
  }
  const channels = [...user.workspaces.map((ws) => `logs:${ws}:*`), `alerts:${user.id}`];
  const source = new EventSource(`/events?channels=${channels.join(',')}`);
  source.addEventListener('sse:ready', () => {
    $('status').textContent = 'live';
    $('status').className = 'live';
  });
  source.addEventListener('sse:reset', () => {
    // The gap could not be replayed: a real page refetches its state here.
    for (const list of Object.values(lists)) list.textContent = '';
  });
  source.addEventListener('logs', (e) => {
    const { channel, data } = JSON.parse(e.data);
    const workspace = channel.split(':')[1];
    const item = document.createElement('li');
    item.className = data.level;
    item.textContent = `${data.time.slice(11, 19)} ${data.level} ${data.message}`;
    lists[workspace]?.append(item);
    while (lists[workspace]?.children.length > 200) lists[workspace].firstChild.remove();
  });
  source.addEventListener('alerts', (e) => {
    $('alerts').textContent = JSON.parse(e.data).data.message;
  });
  source.onerror = () => {
    // CLOSED: the server refused the reconnect (401 after signing out elsewhere); otherwise it retries.
    const closed = source.readyState === EventSource.CLOSED;
    $('status').textContent = closed ? 'signed out' : 'reconnecting…';
    $('status').className = closed ? 'closed' : '';
  };
}
main();

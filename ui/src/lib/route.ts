// Hash routes: #/overview, #/entity/<conn>/<entity>, #/failed?…, #/connections, #/activity, #/find/<text>.

export type Route =
  | { name: 'overview' }
  | { name: 'entity'; entity: string }
  | { name: 'failed'; query: URLSearchParams }
  | { name: 'connections' }
  | { name: 'activity' }
  | { name: 'find'; query: string };

/** The query part of a hash route: `#/failed?entity=c%2Fitems` → `entity=c/items`. */
export function queryOf(hash: string): URLSearchParams {
  const qi = hash.indexOf('?');
  return new URLSearchParams(qi < 0 ? '' : hash.slice(qi + 1));
}

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const qi = h.indexOf('?');
  const path = qi < 0 ? h : h.slice(0, qi);
  const query = queryOf(h);
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  switch (parts[0]) {
    case 'entity':
      if (parts.length >= 3) return { name: 'entity', entity: `${parts[1]}/${parts.slice(2).join('/')}` };
      return { name: 'overview' };
    case 'failed':
      return { name: 'failed', query };
    case 'connections':
      return { name: 'connections' };
    case 'activity':
      return { name: 'activity' };
    case 'find':
      return parts.length >= 2 ? { name: 'find', query: parts.slice(1).join('/') } : { name: 'overview' };
    default:
      return { name: 'overview' };
  }
}

export function entityLink(name: string): string {
  const [conn, ...rest] = name.split('/');
  return `#/entity/${encodeURIComponent(conn)}/${rest.map(encodeURIComponent).join('/')}`;
}

/** The Find screen for `text` (a Trackingid, a pushed batch's id or a record id). */
export function findLink(text: string): string {
  return `#/find/${encodeURIComponent(text.trim())}`;
}

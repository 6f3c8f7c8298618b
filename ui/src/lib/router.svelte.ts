import { parseRoute, type Route } from './route';

/** The current hash route, reactive. */
class Router {
  route = $state<Route>(parseRoute(typeof location === 'undefined' ? '' : location.hash));
  /** The raw hash, so screens can react to query changes. */
  hash = $state(typeof location === 'undefined' ? '' : location.hash);

  start(): () => void {
    const update = () => {
      this.hash = location.hash;
      this.route = parseRoute(location.hash);
    };
    window.addEventListener('hashchange', update);
    update();
    return () => window.removeEventListener('hashchange', update);
  }

  /** Replaces the URL's query without a new history entry or a hashchange. */
  replaceQuery(path: string, query: string): void {
    const next = `#/${path}${query}`;
    if (location.hash !== next) history.replaceState(null, '', next);
    this.hash = next;
  }
}

export const router = new Router();

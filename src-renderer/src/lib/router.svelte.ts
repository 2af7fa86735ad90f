// Hash routing: `#/disks` → 'disks'. Works the same over file:// (Electron)
// and http:// (spindle serve).

export const routeIds = ['dashboard', 'share', 'connect', 'sessions', 'disks', 'settings'] as const;
export type RouteId = (typeof routeIds)[number];

export interface NavItem {
  id: RouteId;
  label: string;
  icon: string;
}

/** The left navigation, in order. */
export const navItems: NavItem[] = [
  { id: 'dashboard', label: 'Dashboard', icon: 'dashboard' },
  { id: 'share', label: 'Share', icon: 'share' },
  { id: 'connect', label: 'Connect', icon: 'connect' },
  { id: 'sessions', label: 'Sessions', icon: 'sessions' },
  { id: 'disks', label: 'Disks', icon: 'disk' },
  { id: 'settings', label: 'Settings', icon: 'settings' },
];

export function href(id: RouteId): string {
  return id === 'dashboard' ? '#/' : `#/${id}`;
}

function parse(hash: string): RouteId | 'not-found' {
  const path = hash.replace(/^#\/?/, '').split(/[?/]/)[0] ?? '';
  if (path === '') return 'dashboard';
  return (routeIds as readonly string[]).includes(path) ? (path as RouteId) : 'not-found';
}

class Router {
  current = $state<RouteId | 'not-found'>(parse(location.hash));

  start(): void {
    window.addEventListener('hashchange', () => {
      this.current = parse(location.hash);
    });
  }
}

export const router = new Router();

import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { restoreTheme } from './lib/theme';
import { router } from './lib/router.svelte';
import { app } from './lib/state.svelte';
import { sharing } from './lib/sharing.svelte';

// A blocked resource is a bug: say so where logs (and the e2e console check) see it.
document.addEventListener('securitypolicyviolation', (e) => {
  console.error(`[spindle] blocked by the content security policy: ${e.effectiveDirective} ${e.blockedURI || '(inline)'}`);
});

restoreTheme();
router.start();
app.start();
sharing.start();

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');

export default mount(App, { target });

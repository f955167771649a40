// The dashboard's login flow, driven by the real @supabase/supabase-js and @supabase/ssr against this
// server (FT_URL as the Supabase URL). Prints {"ok":true,...} or exits 1 naming the failed step.
import { createClient } from '@supabase/supabase-js';
import { createServerClient } from '@supabase/ssr';

const url = process.env.FT_URL;
const email = process.env.FT_EMAIL;
const password = process.env.FT_PASSWORD;

// Node.js 20 has no WebSocket; realtime is not used here, but the client wants a constructor.
class NoSocket { constructor() { throw new Error('realtime is not used by this flow'); } }
const realtime = { transport: NoSocket };

function check(cond, step, detail) {
  if (!cond) {
    console.error('FAIL: ' + step + (detail === undefined ? '' : ': ' + JSON.stringify(detail)));
    process.exit(1);
  }
}

async function api(path, token) {
  const r = await fetch(url + path, { headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' } });
  return r.status;
}

// 1. supabase-js as the browser uses it: sign in, call the API, refresh, read the user, sign out.
const sb = createClient(url, 'anon-key', { realtime, auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } });
let { data, error } = await sb.auth.signInWithPassword({ email, password });
check(!error && data.session && data.user, 'signInWithPassword', error);
const first = data.session;
check(await api('/attendance/my-sessions', first.access_token) === 200, 'an API route with the session token');

const refreshed = await sb.auth.refreshSession();
check(!refreshed.error && refreshed.data.session, 'refreshSession', refreshed.error);
const second = refreshed.data.session;
check(second.access_token !== first.access_token && second.refresh_token !== first.refresh_token, 'refresh rotates both tokens');
check(await api('/attendance/my-sessions', second.access_token) === 200, 'an API route with the refreshed token');

const user = await sb.auth.getUser();
check(!user.error && user.data.user.email.toLowerCase() === email.toLowerCase(), 'getUser', user.error);
check(user.data.user.app_metadata.role === 'EMPLOYEE', 'app_metadata.role', user.data.user.app_metadata);

const out = await sb.auth.signOut();
check(!out.error, 'signOut', out.error);
check(await api('/attendance/my-sessions', second.access_token) === 401, 'the access token after signOut is refused');

const wrong = await sb.auth.signInWithPassword({ email, password: 'certainly not the password' });
check(wrong.error && wrong.error.status === 400 && wrong.error.code === 'invalid_credentials', 'a wrong password', wrong.error);

// 2. @supabase/ssr as the dashboard's Next.js middleware uses it: the session lives in cookies; a later
// request finds its access token about to expire and refreshes it, rewriting the cookies.
const jar = new Map();
const cookies = {
  getAll: () => [...jar].map(([name, value]) => ({ name, value })),
  setAll: (list) => { for (const c of list) { if (c.value) jar.set(c.name, c.value); else jar.delete(c.name); } },
};
const browserish = createServerClient(url, 'anon-key', { cookies, realtime });
({ data, error } = await browserish.auth.signInWithPassword({ email, password }));
check(!error && data.session, 'signInWithPassword through @supabase/ssr', error);
const cookieName = [...jar.keys()].find((n) => n.startsWith('sb-') && n.includes('-auth-token'));
check(cookieName, 'the session cookie', [...jar.keys()]);
const stored = jar.get(cookieName);

const nextRequest = createServerClient(url, 'anon-key', { cookies, realtime });
const later = await nextRequest.auth.getSession();
check(!later.error && later.data.session, 'getSession from the cookies', later.error);
check(later.data.session.access_token !== data.session.access_token, 'the near-expiry session was refreshed');
check(jar.get(cookieName) !== stored, 'the refreshed session was written back to the cookie');
check(await api('/attendance/my-sessions', later.data.session.access_token) === 200, 'an API route with the cookie-refreshed token');

console.log(JSON.stringify({ ok: true, cookie: cookieName }));

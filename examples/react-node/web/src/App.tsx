import { useCallback, useEffect, useState } from 'react';
import { api, whenSessionEnds } from './api';
import { Items } from './Items';
import { Contact } from './Contact';
import { Settings } from './Settings';

export interface Session {
  subject: string;
  claims: { sub: string; name?: string; email?: string };
}

/** frontgate's login: it sends the browser to the IdP and back to `returnTo`. */
export const signInUrl = (returnTo = location.pathname + location.search) =>
  `/.frontgate/login?return_to=${encodeURIComponent(returnTo)}`;

export function App() {
  const [path, setPath] = useState(location.pathname);
  // undefined while asking, null when signed out.
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [ended, setEnded] = useState(false);

  useEffect(() => {
    whenSessionEnds(() => setEnded(true));
    // Who is signed in: frontgate answers from the session, without any token.
    fetch('/.frontgate/session', { headers: { Accept: 'application/json' } })
      .then(async (r) => setSession(r.ok ? await r.json() : null))
      .catch(() => setSession(null));
    const onPop = () => setPath(location.pathname);
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);

  const go = useCallback((to: string) => {
    history.pushState(null, '', to);
    setPath(to);
  }, []);

  const signOut = async () => {
    const { logout_url } = await api<{ logout_url: string }>('/.frontgate/logout', { method: 'POST' });
    location.assign(logout_url);
  };

  const signedIn = !!session && !ended;
  let page;
  if (path === '/contact') page = <Contact />;
  else if (session === undefined) page = <p className="muted">Loading…</p>;
  else if (!session) page = <Welcome />;
  else if (path === '/') page = <Items />;
  else if (path === '/settings') page = <Settings />;
  else page = <NotFound />;

  return (
    <>
      <header>
        <strong className="brand">Items</strong>
        <nav>
          <NavLink to="/" go={go} path={path}>My items</NavLink>
          <NavLink to="/contact" go={go} path={path}>Contact</NavLink>
          {session && <NavLink to="/settings" go={go} path={path}>API keys</NavLink>}
        </nav>
        <span className="who">
          {signedIn && (
            <>
              <span data-testid="user">{session.claims.name ?? session.subject}</span>
              <button type="button" className="link" onClick={signOut}>Sign out</button>
            </>
          )}
          {session === null && <a className="button" href={signInUrl('/')}>Sign in</a>}
        </span>
      </header>
      {ended && (
        <div className="banner" role="alert" data-testid="session-ended">
          Your session has ended. <a href={signInUrl()}>Sign in again</a> to continue; what you typed is kept.
        </div>
      )}
      <main>{page}</main>
    </>
  );
}

function NavLink(props: { to: string; path: string; go: (to: string) => void; children: React.ReactNode }) {
  return (
    <a
      href={props.to}
      aria-current={props.path === props.to ? 'page' : undefined}
      onClick={(e) => {
        e.preventDefault();
        props.go(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

function Welcome() {
  return (
    <section className="card">
      <h1>Welcome</h1>
      <p>Sign in to keep a list of items. The sign-in page is your identity provider's; this app never sees your password or any token.</p>
      <p>
        <a className="button" href={signInUrl()}>Sign in</a>
      </p>
      <p className="muted">Demo user: <code>demo</code> / <code>demo-password</code></p>
    </section>
  );
}

function NotFound() {
  return (
    <section className="card">
      <h1>Not found</h1>
      <p>There is no page here.</p>
    </section>
  );
}

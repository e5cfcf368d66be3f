// Talking to the API through frontgate. There is no token anywhere in this file: the browser
// sends the HttpOnly session cookie by itself (same origin), and every request that changes
// something carries the X-Frontgate-CSRF header, which a page on another site cannot add.
//
// Refusals come back as RFC 9457 problem documents with a stable `code`
// (docs/problems.md); `describe` turns them into words for people.

export interface FieldError {
  pointer: string;
  message: string;
}

export interface Problem {
  status: number;
  code: string;
  title: string;
  detail: string;
  errors: FieldError[];
  /** Seconds, from Retry-After (rate limits). */
  retryAfter?: number;
  /** Where to fetch a proof-of-work challenge (challenge_required). */
  challenge?: string;
  requestId?: string;
}

export class ApiError extends Error {
  constructor(public problem: Problem) {
    super(problem.detail || problem.title);
  }
}

type Init = { method?: string; body?: unknown; headers?: Record<string, string> };

/** Called when any request finds the session gone, so the app can offer to sign in again. */
let onSessionEnded: () => void = () => {};
export function whenSessionEnds(f: () => void) {
  onSessionEnded = f;
}

export async function api<T>(path: string, init: Init = {}): Promise<T> {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { Accept: 'application/json', ...init.headers };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Frontgate-CSRF'] = '1';
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  if (res.ok) {
    return (res.status === 204 ? undefined : await res.json()) as T;
  }
  const problem = await toProblem(res);
  if (problem.code === 'unauthenticated') onSessionEnded();
  throw new ApiError(problem);
}

export async function toProblem(res: Response): Promise<Problem> {
  let doc: Record<string, unknown> = {};
  try {
    doc = await res.json();
  } catch {
    // not JSON: a backend's own error page, say
  }
  const retry = Number(res.headers.get('Retry-After'));
  return {
    status: res.status,
    code: typeof doc.code === 'string' ? doc.code : `http_${res.status}`,
    title: typeof doc.title === 'string' ? doc.title : res.statusText,
    detail: typeof doc.detail === 'string' ? doc.detail : '',
    errors: Array.isArray(doc.errors) ? (doc.errors as FieldError[]) : [],
    retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined,
    challenge: typeof doc.challenge === 'string' ? doc.challenge : undefined,
    requestId: typeof doc.request_id === 'string' ? doc.request_id : undefined,
  };
}

/** A sentence for a person, from the problem's code. */
export function describe(p: Problem): string {
  switch (p.code) {
    case 'validation_failed':
      // Field errors go beside the fields; without any, the detail says what is wrong.
      return p.errors.length ? 'Please check the highlighted fields.' : p.detail || 'Please check what you entered.';
    case 'bad_request':
      return p.detail || 'The request was refused.';
    case 'rate_limited':
      return `Too many attempts. Please wait ${p.retryAfter ?? 'a few'} second${p.retryAfter === 1 ? '' : 's'} and try again.`;
    case 'unauthenticated':
      return 'Your session has ended. Sign in again to continue; what you typed is kept.';
    case 'csrf_failed':
      return 'This request was refused because it did not come from this app.';
    case 'challenge_required':
    case 'challenge_failed':
      return 'The anti-bot check did not pass. Please try again.';
    case 'insufficient_scope':
      return 'You are not allowed to do this.';
    case 'route_not_found':
      return 'This does not exist (any more).';
    case 'payload_too_large':
      return 'That is too long to send.';
    case 'api_key_invalid':
    case 'api_key_revoked':
    case 'api_key_expired':
      return 'That API key no longer works.';
    case 'upstream_unavailable':
    case 'upstream_timeout':
    case 'upstream_error':
    case 'store_unavailable':
    case 'overloaded':
      return 'The service is having trouble right now. Please try again in a moment.';
    case 'http_404':
      return 'It was not found; it may have been deleted in another tab.';
    default:
      return `Something went wrong (${p.code}).${p.requestId ? ` Reference: ${p.requestId}.` : ''}`;
  }
}

/**
 * Field messages from a validation_failed problem, by field name: `/body/title` → `title`.
 * A missing required field is reported on `/body` as `"title" is a required property`.
 */
export function fieldErrors(p: Problem): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of p.errors) {
    let field = e.pointer.startsWith('/body/') ? e.pointer.slice('/body/'.length).split('/')[0] : '';
    if (!field) field = /"([^"]+)" is a required property/.exec(e.message)?.[1] ?? '';
    if (field && !out[field]) out[field] = humanize(e.message);
  }
  return out;
}

function humanize(message: string): string {
  if (/shorter than|is not allowed to be empty|does not match "\\\\S"|does not match/.test(message)) return 'This field cannot be empty.';
  if (/longer than/.test(message)) return 'This is too long.';
  if (/is not a "email"|email/.test(message)) return 'Please enter a valid email address.';
  if (/required property/.test(message)) return 'This field is required.';
  return message;
}

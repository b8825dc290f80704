// A hot function (format: http): Ferrite starts this program once and keeps
// its container up; each call arrives on stdin as an HTTP/1.1 request, and
// the answer goes to stdout as an HTTP/1.1 response, one call at a time.
// stderr is the log. End of input means the container is being stopped: the
// program exits. The app's and route's config keys are environment
// variables, fixed when the container starts; per-call facts come as
// request headers (Fn-Call-Id, ...).
'use strict';

const GREETING = process.env.GREETING || 'Hello';
// Longest request line and headers read (Ferrite sends far shorter).
const MAX_HEAD = 64 * 1024;

// Reads {"name":"Ada"}; a missing, empty or unreadable name greets the World.
function nameIn(body) {
  try {
    const name = JSON.parse(body).name;
    return typeof name === 'string' && name !== '' ? name : 'World';
  } catch {
    return 'World';
  }
}

function badRequest(why) {
  console.error('bad request:', why);
  process.exit(1);
}

// Takes one whole request off the front of `pending`; null while more
// input is needed. A request is its line and headers up to a blank line,
// then exactly Content-Length bytes of body.
let pending = Buffer.alloc(0);
function takeRequest() {
  const headEnd = pending.indexOf('\r\n\r\n');
  if (headEnd < 0) {
    if (pending.length > MAX_HEAD) badRequest('headers too long');
    return null;
  }
  const [requestLine, ...lines] = pending.subarray(0, headEnd).toString('latin1').split('\r\n');
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    // Header names are case-insensitive: kept in lower case.
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] || 0);
  if (!Number.isSafeInteger(length) || length < 0) badRequest('Content-Length is not a number');
  const bodyStart = headEnd + 4;
  if (pending.length < bodyStart + length) return null;
  const body = pending.subarray(bodyStart, bodyStart + length);
  pending = pending.subarray(bodyStart + length);
  const [method, target] = requestLine.split(' ');
  return { method, target, headers, body };
}

function answer(request) {
  const name = nameIn(request.body.toString('utf8'));
  console.error('greeting', name);
  const body = Buffer.from(`${GREETING}, ${name}!\n`);
  process.stdout.write(
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${body.length}\r\n\r\n`,
  );
  process.stdout.write(body);
}

process.stdin.on('data', (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  for (let request; (request = takeRequest()) !== null; ) answer(request);
});
process.stdin.on('end', () => {
  // The end of input between two requests is a clean stop.
  if (pending.length > 0) badRequest('end of input in a request');
});

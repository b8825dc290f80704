// A cold function (format: default): Ferrite runs this program once per
// call, in a fresh container. The request body is stdin, stdout is the
// answer, stderr is the call's log, and the exit status is the outcome.
// Per-call facts (METHOD, REQUEST_URL, HEADER_*, ...) and the app's and
// route's config keys are environment variables.
'use strict';

// Reads {"name":"Ada"}; a missing, empty or unreadable name greets the World.
function nameIn(body) {
  try {
    const name = JSON.parse(body).name;
    return typeof name === 'string' && name !== '' ? name : 'World';
  } catch {
    return 'World';
  }
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const name = nameIn(Buffer.concat(chunks).toString('utf8'));
  // A config key (ferrite apps config set APP GREETING Hi) arrives as an
  // environment variable.
  const greeting = process.env.GREETING || 'Hello';
  console.error('greeting', name);
  process.stdout.write(`${greeting}, ${name}!\n`);
});

// Stand-in run by `go tool mage rehearse` (see .github/rehearsal/README.md):
// fluid-standin, which the rehearsal puts first on the job's PATH, does the work.
const r = require('child_process').spawnSync('fluid-standin', ['cache-post'], { stdio: 'inherit' });
if (r.error) {
  console.log(`::error::fluid-standin cache-post: ${r.error.message} (stand-ins run only inside go tool mage rehearse)`);
  process.exit(1);
}
process.exit(r.status === null ? 1 : r.status);

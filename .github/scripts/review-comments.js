// Posts the bodies `ladder review --out DIR` wrote as the PR's scaleladder comments, edited in
// place on every push. Called from actions/github-script:
//
//   const post = require('./.github/scripts/review-comments.js');
//   await post({ github, context, core, dir: 'review' });
//
// Rules (tests: tests/js/review-comments.test.js, run by `make test`):
// - Only comments written by the workflow's own bot (`github-actions[bot]`) whose body STARTS
//   with our marker are ours. Another bot's comment, or anyone's comment that merely mentions
//   the marker, is never edited or deleted (pulumi/actions anchors its marker the same way).
// - DIR/manifest.json names the parts to post, in reading order. A missing or empty directory,
//   a missing manifest, a part file that is missing, mislabelled or longer than GitHub's
//   65,536 characters: the script throws before any API call, so nothing is ever deleted
//   because the review produced nothing.
// - Reading order is creation order. Part NN is edited in place only while every earlier part
//   is an older comment; from the first part that would land out of order on, the parts are
//   created afresh (then their old comments deleted), so part 02 never sits above part 01.
// - Duplicates of one part (a re-run that raced another) are cleaned up: the oldest is kept.
// - Leftover parts from a longer earlier run, and comments of the older per-stack format, are
//   deleted after the new parts are in place.
'use strict';

const nodeFs = require('fs');
const path = require('path');

const MARKER = 'scaleladder-review';
const BOT = 'github-actions[bot]';
const LIMIT = 65536; // GitHub's maximum comment body, in characters
const PREFIX = `<!-- ${MARKER}:`;
const PART = /^<!-- scaleladder-review:part-(\d{2,}) -->/;

/** The part number a body starts with (1 = summary), or null for anything else. */
function partOf(body) {
  const m = PART.exec(body || '');
  return m ? Number(m[1]) : null;
}

/** True for a comment this workflow wrote: its own bot, our marker at the very start. */
function isOurs(comment) {
  return Boolean(comment.user && comment.user.login === BOT && (comment.body || '').startsWith(PREFIX));
}

/** The bodies to post, in reading order, read and checked before anything is touched. */
function readParts(dir, fs = nodeFs) {
  const manifestPath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(dir)) throw new Error(`${dir}: no review output (did \`ladder review --out ${dir}\` run?)`);
  if (!fs.existsSync(manifestPath)) throw new Error(`${manifestPath} is missing: refusing to touch any comment`);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  if (manifest.marker !== MARKER) throw new Error(`${manifestPath}: marker ${JSON.stringify(manifest.marker)}, expected ${MARKER}`);
  if (!Array.isArray(manifest.parts) || manifest.parts.length === 0) {
    throw new Error(`${manifestPath} lists no parts: refusing to delete the PR's comments`);
  }
  return manifest.parts.map((file, i) => {
    const body = fs.readFileSync(path.join(dir, file), 'utf8');
    if (partOf(body) !== i + 1) throw new Error(`${file}: does not start with ${PREFIX}part-${String(i + 1).padStart(2, '0')} -->`);
    // UTF-16 length >= code points, so this never lets through what GitHub would refuse
    if (body.length > LIMIT) throw new Error(`${file}: ${body.length} characters, over GitHub's ${LIMIT}: refusing to post`);
    return body;
  });
}

/** The API calls that turn `existing` comments into `bodies` (pure: tested without a client). */
function plan(existing, bodies) {
  const ours = existing.filter(isOurs).sort((a, b) => a.id - b.id);
  const byPart = new Map();
  const stale = []; // duplicates, leftover parts, comments of the older format
  for (const c of ours) {
    const n = partOf(c.body);
    if (n === null || n > bodies.length || byPart.has(n)) stale.push(c);
    else byPart.set(n, c);
  }
  const actions = [];
  let lastId = -Infinity;
  let recreate = false;
  bodies.forEach((body, i) => {
    const found = byPart.get(i + 1);
    if (found && !recreate && found.id > lastId) {
      lastId = found.id;
      actions.push(found.body === body ? { op: 'keep', id: found.id, part: i + 1 } : { op: 'update', id: found.id, part: i + 1, body });
      return;
    }
    recreate = true; // every later part must be newer than this one: create them all afresh
    if (found) stale.push(found);
    actions.push({ op: 'create', part: i + 1, body });
  });
  for (const c of stale.sort((a, b) => a.id - b.id)) actions.push({ op: 'delete', id: c.id });
  return actions;
}

/** Post `dir`'s parts on the PR of `context`; returns the counts of each kind of call. */
async function postReview({ github, context, core, dir = 'review', fs = nodeFs }) {
  const bodies = readParts(dir, fs); // throws before any API call
  const { owner, repo } = context.repo;
  const issue_number = (context.payload.pull_request || {}).number || context.issue.number;
  const existing = await github.paginate(github.rest.issues.listComments, { owner, repo, issue_number, per_page: 100 });
  const counts = { keep: 0, update: 0, create: 0, delete: 0 };
  for (const a of plan(existing, bodies)) {
    counts[a.op] += 1;
    if (a.op === 'update') await github.rest.issues.updateComment({ owner, repo, comment_id: a.id, body: a.body });
    else if (a.op === 'create') await github.rest.issues.createComment({ owner, repo, issue_number, body: a.body });
    else if (a.op === 'delete') await github.rest.issues.deleteComment({ owner, repo, comment_id: a.id });
  }
  const line = `scaleladder review: ${bodies.length} part(s): ${counts.create} created, ${counts.update} updated, ` +
    `${counts.keep} unchanged, ${counts.delete} deleted`;
  if (core) core.info(line);
  return counts;
}

module.exports = postReview;
module.exports.postReview = postReview;
module.exports.plan = plan;
module.exports.readParts = readParts;
module.exports.isOurs = isOurs;
module.exports.partOf = partOf;
module.exports.LIMIT = LIMIT;
module.exports.BOT = BOT;

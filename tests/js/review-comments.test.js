// The PR comment script against an in-memory GitHub: `node --test tests/js/` (run by
// tests/unit/test_comment_script.py, so by `make test`). The fake pages listComments 100 at a
// time the way the REST API does and refuses bodies over 65,536 characters like GitHub.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const postReview = require('../../.github/scripts/review-comments.js');

const BOT = 'github-actions[bot]';

class FakeGitHub {
  constructor() {
    this.comments = []; // in creation order, like the API lists them
    this.nextId = 1000;
    this.calls = [];
    const self = this;
    this.rest = {
      issues: {
        async listComments({ issue_number, per_page = 30, page = 1 }) {
          self.calls.push({ op: 'list', page });
          const size = Math.min(per_page, 100);
          const all = self.comments.filter((c) => c.issue_number === issue_number);
          return { data: all.slice((page - 1) * size, page * size).map((c) => ({ ...c, user: { ...c.user } })) };
        },
        async createComment({ issue_number, body }) {
          self.check(body);
          self.calls.push({ op: 'create' });
          const c = { id: self.nextId++, issue_number, body, user: { login: BOT, type: 'Bot' } };
          self.comments.push(c);
          return { data: c };
        },
        async updateComment({ comment_id, body }) {
          self.check(body);
          self.calls.push({ op: 'update', id: comment_id });
          const c = self.comments.find((x) => x.id === comment_id);
          if (!c) throw Object.assign(new Error('Not Found'), { status: 404 });
          c.body = body;
          return { data: c };
        },
        async deleteComment({ comment_id }) {
          self.calls.push({ op: 'delete', id: comment_id });
          const i = self.comments.findIndex((x) => x.id === comment_id);
          if (i < 0) throw Object.assign(new Error('Not Found'), { status: 404 });
          self.comments.splice(i, 1);
        },
      },
    };
  }

  check(body) {
    if (body.length > 65536) throw Object.assign(new Error('Validation Failed: body is too long'), { status: 422 });
  }

  // octokit's paginate: follows pages until one comes back short
  async paginate(method, params) {
    const out = [];
    for (let page = 1; ; page++) {
      const { data } = await method({ ...params, page });
      out.push(...data);
      if (data.length < Math.min(params.per_page || 30, 100)) return out;
    }
  }

  seed(body, login = BOT, issue_number = 7) {
    const c = { id: this.nextId++, issue_number, body, user: { login, type: login.endsWith('[bot]') ? 'Bot' : 'User' } };
    this.comments.push(c);
    return c;
  }

  ours() {
    return this.comments.filter((c) => c.user.login === BOT && c.body.startsWith('<!-- scaleladder-review:'));
  }

  count(op) {
    return this.calls.filter((c) => c.op === op).length;
  }
}

const context = { repo: { owner: 'o', repo: 'r' }, payload: { pull_request: { number: 7 } }, issue: { number: 7 } };

function body(n, text = `text of part ${n}`) {
  return `<!-- scaleladder-review:part-${String(n).padStart(2, '0')} -->\n${text}\n`;
}

function outDir(bodies, manifest) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'review-'));
  const parts = bodies.map((b, i) => {
    const name = `part-${String(i + 1).padStart(2, '0')}.md`;
    fs.writeFileSync(path.join(dir, name), b);
    return name;
  });
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest || { marker: 'scaleladder-review', parts }));
  return dir;
}

async function run(gh, bodies) {
  return postReview({ github: gh, context, dir: outDir(bodies) });
}

const readingOrder = (gh) => gh.ours().map((c) => postReview.partOf(c.body));

test('creates every part on a PR without comments, in reading order', async () => {
  const gh = new FakeGitHub();
  await run(gh, [body(1), body(2), body(3)]);
  assert.deepEqual(readingOrder(gh), [1, 2, 3]);
  assert.equal(gh.count('create'), 3);
});

test('finds our comments beyond the first page of 100', async () => {
  const gh = new FakeGitHub();
  for (let i = 0; i < 150; i++) gh.seed(`chatter ${i}`, `user${i}`);
  const old = gh.seed(body(1, 'old summary'));
  await run(gh, [body(1, 'new summary')]);
  assert.ok(gh.calls.filter((c) => c.op === 'list').length >= 2, 'listed page 2');
  assert.equal(gh.count('create'), 0, 'no second summary created');
  assert.deepEqual(gh.ours().map((c) => [c.id, c.body]), [[old.id, body(1, 'new summary')]]);
});

test('edits in place when the body changed, and makes no call when nothing changed', async () => {
  const gh = new FakeGitHub();
  await run(gh, [body(1), body(2)]);
  const ids = gh.ours().map((c) => c.id);
  gh.calls = [];
  await run(gh, [body(1, 'changed'), body(2)]);
  assert.deepEqual(gh.calls.filter((c) => c.op !== 'list'), [{ op: 'update', id: ids[0] }]);
  gh.calls = [];
  const counts = await run(gh, [body(1, 'changed'), body(2)]);
  assert.deepEqual(gh.calls.filter((c) => c.op !== 'list'), []);
  assert.deepEqual(counts, { keep: 2, update: 0, create: 0, delete: 0 });
  assert.deepEqual(gh.ours().map((c) => c.id), ids);
});

test('deletes parts left over from a longer earlier run, and comments of the older format', async () => {
  const gh = new FakeGitHub();
  gh.seed('<!-- scaleladder-review:phase2 -->\n<!-- scaleladder-review-part:1/1 -->\nold per-stack comment');
  await run(gh, [body(1), body(2), body(3)]);
  await run(gh, [body(1)]);
  assert.deepEqual(readingOrder(gh), [1]);
  assert.equal(gh.ours().length, 1);
});

test("never touches another bot's or a person's comment carrying our marker", async () => {
  const gh = new FakeGitHub();
  const renovate = gh.seed(body(1, 'renovate quoting us'), 'renovate[bot]');
  const person = gh.seed(body(2, 'a reviewer pasted our marker'), 'alice');
  const mention = gh.seed(`see ${body(1)}`); // our bot, but the marker is not at the start
  const before = JSON.stringify([renovate, person, mention]);
  await run(gh, [body(1), body(2)]);
  await run(gh, [body(1, 'v2')]);
  const after = gh.comments.filter((c) => [renovate.id, person.id, mention.id].includes(c.id));
  assert.equal(JSON.stringify(after), before);
  assert.ok(!gh.calls.some((c) => [renovate.id, person.id, mention.id].includes(c.id)), 'no call on them');
  assert.deepEqual(readingOrder(gh), [1]);
});

test('an empty or missing output directory, or an empty manifest, deletes nothing and fails', async () => {
  const gh = new FakeGitHub();
  await run(gh, [body(1), body(2)]);
  const kept = JSON.stringify(gh.comments);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'review-empty-'));
  gh.calls = [];
  await assert.rejects(postReview({ github: gh, context, dir: empty }), /manifest\.json is missing/);
  await assert.rejects(postReview({ github: gh, context, dir: path.join(empty, 'nosuch') }), /no review output/);
  await assert.rejects(postReview({ github: gh, context, dir: outDir([], { marker: 'scaleladder-review', parts: [] }) }),
    /lists no parts/);
  assert.deepEqual(gh.calls, [], 'not even a list call');
  assert.equal(JSON.stringify(gh.comments), kept);
});

test('a part over 65,536 characters or with the wrong marker is refused before any call', async () => {
  const gh = new FakeGitHub();
  await assert.rejects(run(gh, [body(1), body(2, 'x'.repeat(65536))]), /over GitHub's 65536/);
  await assert.rejects(run(gh, [body(2)]), /does not start with <!-- scaleladder-review:part-01/);
  assert.deepEqual(gh.calls, []);
  const exact = body(1, '');
  await run(gh, [exact + 'y'.repeat(65536 - exact.length)]); // exactly at the limit is allowed
  assert.equal(gh.ours()[0].body.length, 65536);
});

test('11+ parts read in order (zero-padded names, not 1, 10, 11, 2)', async () => {
  const gh = new FakeGitHub();
  const bodies = Array.from({ length: 12 }, (_, i) => body(i + 1));
  const dir = outDir(bodies);
  // the manifest, not a directory listing, decides the order
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.md')).sort().slice(0, 3), ['part-01.md', 'part-02.md', 'part-03.md']);
  await postReview({ github: gh, context, dir });
  assert.deepEqual(readingOrder(gh), Array.from({ length: 12 }, (_, i) => i + 1));
});

test('when the set of parts grows, parts that would land out of order are recreated', async () => {
  const gh = new FakeGitHub();
  await run(gh, [body(1), body(3, 'x').replace('part-03', 'part-02')]);
  // someone deleted part 01 by hand; the next run must not put the new 01 below 02
  gh.comments.splice(gh.comments.findIndex((c) => postReview.partOf(c.body) === 1), 1);
  gh.seed('a human comment in between', 'bob');
  await run(gh, [body(1), body(2), body(3)]);
  assert.deepEqual(readingOrder(gh), [1, 2, 3]);
  const ids = gh.ours().map((c) => c.id);
  assert.deepEqual([...ids].sort((a, b) => a - b), ids, 'creation order is reading order');
  // growing at the end keeps the earlier parts in place
  const before = gh.ours().map((c) => c.id);
  gh.calls = [];
  await run(gh, [body(1), body(2), body(3), body(4)]);
  assert.deepEqual(gh.ours().map((c) => c.id).slice(0, 3), before);
  assert.equal(gh.count('create'), 1);
  assert.equal(gh.count('delete'), 0);
});

test('duplicates of one part are cleaned up, the oldest kept', async () => {
  const gh = new FakeGitHub();
  const first = gh.seed(body(1, 'one'));
  gh.seed(body(1, 'two'));
  gh.seed(body(2, 'a'));
  gh.seed(body(2, 'b'));
  await run(gh, [body(1), body(2)]);
  assert.deepEqual(readingOrder(gh), [1, 2]);
  assert.equal(gh.ours()[0].id, first.id);
  assert.equal(gh.ours()[0].body, body(1));
});

test('a comment with no user (a deleted account) is not ours', () => {
  assert.equal(postReview.isOurs({ id: 1, body: body(1), user: null }), false);
  assert.equal(postReview.isOurs({ id: 1, body: body(1), user: { login: BOT } }), true);
  assert.equal(postReview.isOurs({ id: 1, body: ` ${body(1)}`, user: { login: BOT } }), false);
});

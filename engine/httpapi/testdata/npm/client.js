// Drives Ninetailed's published clients against a tailor server serving
// ../rules.yaml, asserts on what they return, and prints the results as one
// JSON line (the last line of stdout) for npm_test.go to check as well.
//
//   TAILOR_URL=http://127.0.0.1:8080 node client.js
//
// Both clients validate every response with their own zod schemas, so a
// resolved promise already proves wire compatibility; the asserts below
// prove the values.
'use strict';

const assert = require('node:assert/strict');
const { NinetailedApiClient } = require('@ninetailed/experience.js-shared');
const { NinetailedAPIClient: NodeClient } = require('@ninetailed/experience.js-node');

const url = process.env.TAILOR_URL;
if (!url) {
  console.error('TAILOR_URL is not set');
  process.exit(2);
}
const clientId = 'org-npm';
const environment = 'main';

// Keep the libraries' own logging off stdout, which carries the result.
for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
}

let clock = Date.parse('2026-06-13T10:00:00.000Z');
function ts() {
  clock += 1000;
  return new Date(clock).toISOString();
}

// baseEvent builds an event as the browser SDK would; extra.context is
// merged into the default context.
function baseEvent(type, extra = {}) {
  const t = ts();
  const { context, ...rest } = extra;
  return {
    type,
    channel: 'web',
    messageId: `msg-${type}-${clock}`,
    timestamp: t,
    originalTimestamp: t,
    sentAt: t,
    context: {
      library: { name: 'tailor npm test', version: '1.0.0' },
      locale: 'de-DE',
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
      page: {
        url: 'https://shop.example/pricing?utm_source=newsletter',
        path: '/pricing',
        query: { utm_source: 'newsletter' },
        referrer: '',
        search: '?utm_source=newsletter',
      },
      gdpr: { isConsentGiven: true },
      ...context,
    },
    ...rest,
  };
}

const page = () => baseEvent('page', { name: 'pricing', properties: { title: 'Pricing' } });
const track = (event) => baseEvent('track', { event, properties: { value: 42 } });
const identify = (userId, traits) => baseEvent('identify', { userId, traits });

function experience(data, id) {
  return data.experiences.find((e) => e.experienceId === id);
}
function change(data, key) {
  return data.changes.find((c) => c.key === key);
}

async function main() {
  const api = new NinetailedApiClient({ clientId, environment, url });
  const out = {};

  // 1. createProfile: a new anonymous visitor, German locale, location given
  //    by the edge (context.location), IP features on.
  const edge = {
    location: { city: 'San Francisco', region: 'California', regionCode: 'CA', country: 'United States', countryCode: 'US' },
  };
  const created = await api.createProfile(
    { events: [baseEvent('page', { name: 'home', context: edge })] },
    { locale: 'de-DE', ip: '203.0.113.7', enabledFeatures: ['location', 'ip-enrichment'] },
  );
  const a = created.profile;
  assert.match(a.id, /^[0-9a-f]{64}$/, 'new profile ids are 64 hex chars');
  assert.ok(a.stableId, 'stableId is set');
  assert.ok(a.random >= 0 && a.random < 1, 'random in [0,1)');
  assert.deepEqual(a.audiences.filter((x) => x !== 'audience-californians').sort(),
    ['audience-german', 'audience-new-visitors']);
  assert.ok(a.audiences.includes('audience-californians'), 'edge location reaches the rules');
  assert.equal(a.location.countryCode, 'US');
  assert.equal(a.session.count, 1);
  assert.equal(a.session.isReturningVisitor, false);
  const hero = experience(created, 'exp-hero-banner-test');
  assert.ok(hero, 'hero experiment selected for everyone');
  assert.equal(hero.variantIndex, 1);
  assert.deepEqual(hero.variants, { 'hero-banner': 'entry-variant-b-id' });
  assert.equal(hero.sticky, true);
  assert.equal(experience(created, 'exp-paused'), undefined, 'paused experience never selected');
  assert.equal(experience(created, 'exp-pro-plan-upsell'), undefined);
  assert.deepEqual(created.changes, []);
  out.created = { id: a.id, audiences: a.audiences, experiences: created.experiences.map((e) => e.experienceId) };

  // 1b. IP enrichment: no edge location, so the server's locator (an echo
  //     locator in npm_test.go) resolves the ip option in the locale option.
  const located = await api.createProfile(
    { events: [page()] },
    { locale: 'fr-CH', ip: '198.51.100.77', enabledFeatures: ['ip-enrichment'] },
  );
  assert.equal(located.profile.location.city, 'city@fr-CH', 'locale option reaches the locator');
  assert.equal(located.profile.location.region, '198.51.100.77', 'ip option reaches the locator');
  assert.equal(located.profile.location.countryCode, 'CH');
  out.located = located.profile.location;

  // 2. updateProfile: identify with a pro plan.
  const updated = await api.updateProfile(
    { profileId: a.id, events: [identify('user-npm-1', { plan: 'pro', email: 'jane@example.com' })] },
    { locale: 'de-DE' },
  );
  assert.equal(updated.profile.id, a.id);
  assert.equal(updated.profile.traits.plan, 'pro');
  assert.ok(updated.profile.audiences.includes('audience-pro-plan'));
  const upsell = experience(updated, 'exp-pro-plan-upsell');
  assert.ok(upsell, 'pro visitors get the upsell');
  assert.equal(upsell.variantIndex, 1);
  assert.deepEqual(change(updated, 'cta-color'), {
    key: 'cta-color', type: 'Variable', value: 'green', meta: { experienceId: 'exp-pro-plan-upsell', variantIndex: 1 },
  });
  assert.deepEqual(change(updated, 'pricing').value, { discount: 10, label: 'ten' });
  out.updated = { audiences: updated.profile.audiences, changes: updated.changes.map((c) => c.key) };

  // 3. preflight: two purchases would make a buyer, but nothing persists.
  const pre = await api.updateProfile(
    { profileId: a.id, events: [track('purchase'), track('purchase')] },
    { preflight: true, locale: 'de-DE' },
  );
  assert.ok(pre.profile.audiences.includes('audience-buyers'), 'preflight evaluates the events');
  assert.equal(change(pre, 'free-shipping').value, true);

  // 4. getProfile: the stored state, without the preflight purchases.
  const got = await api.getProfile(a.id, {});
  assert.equal(got.profile.id, a.id);
  assert.ok(!got.profile.audiences.includes('audience-buyers'), 'preflight persisted nothing');
  assert.ok(got.profile.audiences.includes('audience-pro-plan'));
  assert.equal(got.profile.traits.email, 'jane@example.com');
  assert.equal(experience(got, 'exp-hero-banner-test').variantIndex, 1, 'sticky variant kept');
  out.got = { id: got.profile.id, audiences: got.profile.audiences };

  // 5. upsertProfile: without an id it creates, with one it updates.
  const b = await api.upsertProfile({ events: [page()] }, { locale: 'en' });
  assert.notEqual(b.profile.id, a.id);
  assert.deepEqual(b.profile.location, {}, 'no IP lookup without the location feature');
  const b2 = await api.upsertProfile({
    profileId: b.profile.id,
    events: [track('purchase'), track('purchase'), identify('', { plan: 'free', newsletter: true })],
  });
  assert.equal(b2.profile.id, b.profile.id, 'an identify without userId never merges');
  assert.equal(b2.profile.traits.plan, 'free');
  assert.ok(b2.profile.audiences.includes('audience-buyers'));
  assert.equal(change(b2, 'free-shipping').value, true);

  // 6. anonymous -> known merge: the anonymous visitor B logs in as the
  //    user already known on profile A; the answer carries A's id.
  const merged = await api.updateProfile({
    profileId: b.profile.id,
    events: [identify('user-npm-1', {})],
  });
  assert.equal(merged.profile.id, a.id, 'the survivor is the known profile');
  assert.equal(merged.profile.traits.plan, 'pro', 'the known profile wins trait conflicts');
  assert.equal(merged.profile.traits.newsletter, true, 'anonymous traits fill gaps');
  assert.ok(merged.profile.audiences.includes('audience-buyers'), 'event histories add up');
  const viaOldId = await api.getProfile(b.profile.id);
  assert.equal(viaOldId.profile.id, a.id, 'the merged-away id resolves to the survivor');
  out.merge = { anonymous: b.profile.id, survivor: merged.profile.id, audiences: merged.profile.audiences };

  // 7. upsertManyProfiles: one batch, two visitors.
  const many = await api.upsertManyProfiles({
    events: [
      { ...page(), anonymousId: 'batch-visitor-1' },
      { ...track('purchase'), anonymousId: 'batch-visitor-2' },
      { ...track('purchase'), anonymousId: 'batch-visitor-2' },
      { ...identify('', { plan: 'pro' }), anonymousId: 'batch-visitor-1' },
    ],
  }, { enabledFeatures: ['location'], ip: '198.51.100.20' });
  assert.equal(many.length, 2);
  assert.equal(many[0].id, 'batch-visitor-1');
  assert.ok(many[0].audiences.includes('audience-pro-plan'));
  assert.equal(many[1].id, 'batch-visitor-2');
  assert.ok(many[1].audiences.includes('audience-buyers'));
  out.many = many.map((p) => ({ id: p.id, audiences: p.audiences }));

  // 8. The Node SDK: track and identify go through POST /events.
  const node = new NodeClient({ clientId, environment, url });
  await node.sendTrackEvent('node-user-1', 'purchase', { sku: 'A' });
  const tracked = await node.sendTrackEvent('node-user-1', 'purchase', { sku: 'B' }, { ip: '203.0.113.8' });
  assert.equal(tracked.id, 'node-user-1', 'anonymousId defaults to the userId');
  assert.ok(tracked.audiences.includes('audience-buyers'));
  const identified = await node.sendIdentifyEvent('node-user-1', { plan: 'pro' });
  assert.equal(identified.id, 'node-user-1');
  assert.ok(identified.audiences.includes('audience-pro-plan'));
  assert.equal(identified.traits.plan, 'pro');
  out.node = { id: identified.id, audiences: identified.audiences };

  // 9. Errors reach the client as failures, not as bad data.
  await assert.rejects(api.getProfile('no-such-profile'), /404/);
  await assert.rejects(api.updateProfile({ profileId: a.id, events: [{ type: 'bogus' }] }), /400/);

  process.stdout.write('\n' + JSON.stringify(out) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});

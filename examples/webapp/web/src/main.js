// The browser side of examples/webapp: Ninetailed's SDK on the profile the
// server already rendered. Bundled by `npm run build` into dist/sdk.js,
// which the Go server serves at /static/sdk.js.
//
// The server writes what it decided into <script id="tailor-state">: the
// profile id (its HttpOnly cookie cannot be read from here), the consent,
// the Experience API's path and the experiences it rendered. This script
//
//   1. starts the SDK on that profile id (onInitProfileId), with its storage
//      in page memory (storageImpl), so no second copy of the id lives in
//      localStorage to drift from the cookie;
//   2. applies the consent with Ninetailed's privacy plugin (without
//      consent no location features are requested) and, without consent,
//      strips the context of the SDK's events to the page's address;
//   3. reports the sticky hero the visitor sees (a component event, as the
//      SDK's experience tracking sends it);
//   4. compares the SDK's profile and experiences with the server's and
//      publishes the result in window.tailorSDK and in the page's panel.
//
// It never re-renders what the server rendered: the page cannot flicker.
import { Ninetailed, CONSENT } from '@ninetailed/experience.js';
import { NinetailedPrivacyPlugin } from '@ninetailed/experience.js-plugin-privacy';

const report = {
  // starting -> ready | idle (nothing to report on this page) | off | error
  status: 'starting',
  profileId: null,
  experiences: null,
  agrees: null,
  error: null,
};
window.tailorSDK = report;

function publish() {
  const out = document.getElementById('sdk-status');
  if (out) {
    out.dataset.status = report.status;
    out.textContent = describe();
  }
  document.dispatchEvent(new CustomEvent('tailor:sdk', { detail: report }));
}

function describe() {
  switch (report.status) {
    case 'ready': {
      const xs = report.experiences.map((e) => `${e.experienceId} → variant ${e.variantIndex}`).join(', ') || 'no experiences';
      return `${report.agrees ? 'Same as the server' : 'DIFFERS from the server'}: profile ${short(report.profileId)}, ${xs}.`;
    }
    case 'idle':
      return `Started on profile ${short(report.profileId)}; no personalized entry on this page to report.`;
    case 'off':
      return 'Not started: the server rendered no profile.';
    case 'error':
      return `Error: ${report.error}`;
    default:
      return 'Starting…';
  }
}

function short(id) {
  return id ? id.slice(0, 12) + '…' : '(none)';
}

// key identifies a selected experience by id and variant.
const key = (e) => `${e.experienceId}#${e.variantIndex}`;

function sameExperiences(server, sdk) {
  const a = server.map(key).sort();
  const b = sdk.map(key).sort();
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

// memoryStorage is the SDK's storage (the analytics library's getItem /
// setItem / removeItem) kept in page memory: the server hands the SDK its
// state on every page, so nothing needs to outlive the page.
function memoryStorage(initial) {
  const m = new Map(Object.entries(initial));
  return {
    getItem: (k) => m.get(k),
    setItem: (k, v) => {
      m.set(k, v);
    },
    removeItem: (k) => {
      m.delete(k);
    },
  };
}

// minimalContext is the SDK's client context without consent.
function minimalContext() {
  return {
    url: window.location.origin + window.location.pathname,
    referrer: '',
    locale: '',
    userAgent: '',
    document: { title: '' },
  };
}

function start() {
  const state = JSON.parse(document.getElementById('tailor-state').textContent);
  if (!state.profileId) {
    report.status = 'off';
    publish();
    return;
  }
  report.profileId = state.profileId;

  const nt = new Ninetailed(
    { clientId: state.clientId, environment: state.environment },
    {
      url: new URL(state.apiPath, window.location.href).href,
      // Ninetailed's defaults: without consent only page events, no
      // traits, no merging and no features; with consent everything.
      plugins: [new NinetailedPrivacyPlugin()],
      // The privacy plugin reads the consent from the SDK's storage, so it
      // is there before the plugin starts.
      storageImpl: memoryStorage(state.consent ? { [CONSENT]: 'accepted' } : {}),
      // Whatever the SDK had, the server's id wins.
      onInitProfileId: () => state.profileId,
      // Without consent the events carry no referrer, query, locale or
      // user agent (the privacy plugin does not strip context, and the
      // SDK marks every event isConsentGiven: true whatever the consent).
      buildClientContext: state.consent ? undefined : minimalContext,
      onError: (err) => {
        report.status = 'error';
        report.error = String(err && err.message ? err.message : err);
        publish();
      },
    },
  );
  window.tailorNinetailed = nt;

  nt.onProfileChange((ps) => {
    if (ps.status === 'loading') {
      return;
    }
    if (ps.status === 'error' || !ps.profile) {
      report.status = 'error';
      report.error = String(ps.error && ps.error.message ? ps.error.message : ps.error);
      publish();
      return;
    }
    report.profileId = ps.profile.id;
    report.experiences = ps.experiences.map((e) => ({ experienceId: e.experienceId, variantIndex: e.variantIndex }));
    report.agrees = ps.profile.id === state.profileId && sameExperiences(state.experiences, ps.experiences);
    report.status = 'ready';
    publish();
  });

  // The sticky entry this page shows, reported as Ninetailed's
  // experience tracking reports it: a component event with the variant,
  // which keeps the assignment. (observeElement would queue the same event,
  // but its flush runs before the event is queued, so the event waits for
  // the SDK's next page, track or identify call; trackStickyComponentView
  // sends it at once.)
  const hero = document.querySelector('[data-tailor-experience]');
  if (!hero || hero.dataset.tailorSticky !== 'true') {
    nt.onIsInitialized(() => {
      if (report.status === 'starting') {
        report.status = 'idle';
        publish();
      }
    });
    return;
  }
  nt.trackStickyComponentView({
    experienceId: hero.dataset.tailorExperience,
    componentId: hero.dataset.tailorEntry,
    variantIndex: Number(hero.dataset.tailorVariant),
  }).then(() => {
    // Should the flush still have run before the event was queued, send
    // what is queued.
    if (nt.profileState.status === 'loading') {
      return nt.batch([]);
    }
  });
}

try {
  start();
} catch (err) {
  report.status = 'error';
  report.error = String(err && err.message ? err.message : err);
  publish();
}

//! The JavaScript the harness and the benchmark run in the pages, one copy of each: scripts that
//! leave what they record in a `window.__…` global, and the ones that read it back.

/// Injected with `Page.addScriptToEvaluateOnNewDocument` before any script of the page runs, into
/// `window.__bench`: when `input[name=username]` is in the DOM, visible and enabled
/// (`inputReadyMs`, `performance.now()`, i.e. ms since navigation start), the app's
/// `WebAssembly.Memory` from trunk's `TrunkApplicationStarted` event (`wasmMemory`), every
/// change of `document.visibilityState` (`visibility`), and every refresh request the page makes
/// (`refreshes`, from resource timing, so the page's own fetch is untouched).
pub const PROBE: &str = r#"(() => {
  if (window.__bench) return;
  const b = window.__bench = { inputReadyMs: null, refreshes: [], wasmMemory: null,
                               visibility: [{ at: Date.now(), state: document.visibilityState }] };
  document.addEventListener('visibilitychange', () =>
    b.visibility.push({ at: Date.now(), state: document.visibilityState }));
  const ready = () => {
    if (b.inputReadyMs !== null) return true;
    const e = document.querySelector('input[name=username]');
    if (!e || e.disabled || e.offsetParent === null) return false;
    const r = e.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    b.inputReadyMs = performance.now();
    return true;
  };
  if (!ready()) {
    const mo = new MutationObserver(() => { if (ready()) mo.disconnect(); });
    mo.observe(document, { subtree: true, childList: true, attributes: true });
    addEventListener('DOMContentLoaded', ready);
    addEventListener('load', ready);
  }
  addEventListener('TrunkApplicationStarted', (e) => {
    const w = e.detail && e.detail.wasm;
    if (w && w.memory) b.wasmMemory = w.memory;
  });
  try {
    new PerformanceObserver((list) => {
      for (const en of list.getEntries()) {
        if (en.name.includes('/api/auth/refreshtoken')) {
          b.refreshes.push({ at: performance.timeOrigin + en.startTime,
                             status: en.responseStatus === undefined ? null : en.responseStatus });
        }
      }
    }).observe({ type: 'resource', buffered: true });
  } catch (_) {}
})();"#;

/// The used JS heap and the byte length of the wasm memory the [`PROBE`] captured (`null` for
/// what the page does not have).
pub const MEMORY: &str = "const b = window.__bench || {}; \
     return { heap: performance.memory ? performance.memory.usedJSHeapSize : null, \
              wasm: b.wasmMemory ? b.wasmMemory.buffer.byteLength : null };";

/// Empties `window.__burst` and, once per page, installs a MutationObserver that appends every
/// text the inspector's burst result line (`[data-testid=burst-result]`) goes through, so the
/// result of an earlier, identical burst is not taken for the next one's (see [`BURST_RESULT`]).
pub const WATCH_BURSTS: &str = "window.__burst = []; \
     if (!window.__burstObserver) { \
       window.__burstObserver = new MutationObserver(() => { \
         const e = document.querySelector('[data-testid=burst-result]'); \
         const a = window.__burst; \
         if (e && a[a.length - 1] !== e.textContent) a.push(e.textContent); \
       }); \
       window.__burstObserver.observe(document.body, { subtree: true, childList: true, characterData: true }); \
     }";

/// The first result line starting with `arguments[0]` ("K calls: ") that [`WATCH_BURSTS`]
/// recorded after the burst was seen in flight, or `null`.
pub const BURST_RESULT: &str = "const a = window.__burst || []; \
     const i = a.findIndex(t => t.includes('in flight')); \
     if (i < 0) return null; \
     return a.slice(i + 1).find(t => t.startsWith(arguments[0])) || null;";

/// The inspector's event log as shown, newest first (an expression).
pub const EVENT_LOG: &str =
    "[...document.querySelectorAll('[data-testid=event-log] li')].map(li => li.textContent)";

// The satellite's web view. Span text comes from the programs that report: it enters the
// document through textContent only, never as HTML.
'use strict';

(function () {
  const app = document.getElementById('app');
  const storeStats = document.getElementById('store-stats');
  const LIST_POLL_MS = 1000;
  const TRACE_POLL_MS = 2000;
  const MAX_INDENT = 30;

  function el(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  function formatDuration(nanos) {
    if (nanos < 1e3) return nanos + ' ns';
    if (nanos < 1e6) return (nanos / 1e3).toFixed(nanos < 1e4 ? 2 : 1) + ' µs';
    if (nanos < 1e9) return (nanos / 1e6).toFixed(nanos < 1e7 ? 2 : 1) + ' ms';
    return (nanos / 1e9).toFixed(2) + ' s';
  }

  function formatTime(unixMs) {
    const date = new Date(unixMs);
    const pad = (n, width) => String(n).padStart(width, '0');
    return date.getFullYear() + '-' + pad(date.getMonth() + 1, 2) + '-' + pad(date.getDate(), 2) +
      ' ' + pad(date.getHours(), 2) + ':' + pad(date.getMinutes(), 2) + ':' +
      pad(date.getSeconds(), 2) + '.' + pad(date.getMilliseconds(), 3);
  }

  // A stable colour per service name.
  const colors = new Map();
  function serviceColor(name) {
    let color = colors.get(name);
    if (color === undefined) {
      let hash = 0;
      for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) | 0;
      color = 'hsl(' + (Math.abs(hash) % 360) + ', 55%, 48%)';
      colors.set(name, color);
    }
    return color;
  }

  function serviceChip(name) {
    const chip = el('span', 'service-chip', name || '(no service)');
    chip.style.background = serviceColor(name);
    return chip;
  }

  function showStoreStats(stored, evicted, limits) {
    let text = stored.traces + ' traces, ' + stored.spans + ' spans kept (at most ' +
      limits.max_traces + ' traces, ' + limits.max_spans + ' spans)';
    text += ' · evicted: ' + evicted.traces + ' traces, ' + evicted.spans + ' spans';
    storeStats.textContent = text;
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: 'no-store' });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  function showError(container, error) {
    container.replaceChildren(el('p', 'error-text', String(error.message || error)));
  }

  // ---- The list of traces ----

  function listView() {
    const params = new URLSearchParams(location.search);
    const form = el('form', 'filters');
    form.addEventListener('submit', (event) => event.preventDefault());
    const labelled = (text, control) => {
      const label = el('label', null, text);
      label.append(control);
      form.append(label);
      return control;
    };
    const service = labelled('Service', el('select'));
    service.name = 'service';
    const operation = labelled('Operation', el('select'));
    operation.name = 'operation';
    const errors = labelled('Errors only', el('input'));
    errors.type = 'checkbox';
    errors.name = 'errors';
    errors.checked = params.get('errors') === 'true';
    const minDuration = labelled('Min duration (ms)', el('input'));
    minDuration.type = 'number';
    minDuration.min = '0';
    minDuration.step = 'any';
    minDuration.name = 'min_duration_ms';
    minDuration.value = params.get('min_duration_ms') || '';

    const table = el('table', 'traces');
    const head = el('tr');
    for (const title of ['Start', 'Root operation', 'Services', 'Duration', 'Spans', 'Errors']) {
      head.append(el('th', null, title));
    }
    const thead = el('thead');
    thead.append(head);
    table.append(thead);
    const body = el('tbody');
    body.id = 'traces-body';
    table.append(body);
    const footer = el('p', 'empty');
    footer.id = 'list-footer';
    app.replaceChildren(form, table, footer);

    let shownVersion = null;
    let shownQuery = null;

    function query() {
      const q = new URLSearchParams();
      if (service.value) q.set('service', service.value);
      if (operation.value) q.set('operation', operation.value);
      if (errors.checked) q.set('errors', 'true');
      if (minDuration.value) q.set('min_duration_ms', minDuration.value);
      return q.toString();
    }

    function fillSelect(select, values, current) {
      const wanted = current || '';
      const options = [el('option', null, 'all')];
      options[0].value = '';
      const all = values.slice();
      if (wanted && !all.includes(wanted)) all.push(wanted);
      for (const value of all) {
        const option = el('option', null, value);
        option.value = value;
        options.push(option);
      }
      select.replaceChildren(...options);
      select.value = wanted;
    }

    async function refresh() {
      const q = query();
      let listing;
      try {
        listing = await getJson('/api/traces' + (q ? '?' + q : ''));
      } catch (error) {
        footer.textContent = 'Cannot list the traces: ' + error.message;
        return;
      }
      showStoreStats(listing.stored, listing.evicted, listing.limits);
      if (listing.version === shownVersion && q === shownQuery) return;
      shownVersion = listing.version;
      shownQuery = q;
      fillSelect(service, listing.services, service.value || params.get('service'));
      fillSelect(operation, listing.operations, operation.value || params.get('operation'));
      params.delete('service');
      params.delete('operation');
      renderTraces(body, listing.traces);
      body.dataset.version = String(listing.version);
      footer.textContent = listing.traces.length === 0
        ? (listing.stored.traces === 0
          ? 'No traces yet: point a tracer at this satellite (' + location.origin + ').'
          : 'No trace matches these filters.')
        : 'Showing ' + listing.traces.length + ' of ' + listing.matched + ' matching traces.';
    }

    form.addEventListener('change', () => {
      const q = query();
      history.replaceState(null, '', q ? '?' + q : location.pathname);
      refresh();
    });
    refresh();
    setInterval(refresh, LIST_POLL_MS);
  }

  function renderTraces(body, traces) {
    const rows = traces.map((trace) => {
      const row = el('tr', 'trace-row');
      row.dataset.traceId = trace.trace_id;
      const href = '/trace/' + encodeURIComponent(trace.trace_id);
      row.addEventListener('click', (event) => {
        if (event.target.closest('a')) return;
        location.href = href;
      });
      row.append(el('td', 'start', formatTime(trace.start_unix_ms)));
      const root = el('td', 'root');
      const link = el('a', 'trace-link', trace.root_operation);
      link.href = href;
      root.append(link);
      if (trace.root_missing) root.append(' ', el('span', 'missing', '(root not received)'));
      row.append(root);
      const services = el('td', 'services');
      for (const name of trace.services) services.append(serviceChip(name));
      row.append(services);
      row.append(el('td', 'num duration', formatDuration(trace.duration_nanos)));
      const spans = el('td', 'num span-count', trace.span_count);
      if (trace.spans_not_kept > 0) spans.title = trace.spans_not_kept + ' spans not kept';
      row.append(spans);
      const errorCell = el('td', 'errors');
      if (trace.error_count > 0) {
        errorCell.append(el('span', 'error-mark', trace.error_count + (trace.error_count === 1 ? ' error' : ' errors')));
      }
      row.append(errorCell);
      return row;
    });
    body.replaceChildren(...rows);
  }

  // ---- One trace as a waterfall ----

  function traceView(traceId) {
    let shown = null;
    let selected = null;
    const url = '/api/traces/' + encodeURIComponent(traceId);
    async function refresh() {
      try {
        // The summary first: the spans are fetched again only when they changed.
        if (shown !== null) {
          const summary = await getJson(url + '?summary=true');
          if (summary.span_count + '/' + summary.spans_not_kept === shown) return;
        }
        const trace = await getJson(url);
        shown = trace.span_count + '/' + trace.spans_not_kept;
        renderTrace(trace, selected, (spanId) => { selected = spanId; });
      } catch (error) {
        if (shown === null) showError(app, error);
      }
    }
    refresh();
    setInterval(refresh, TRACE_POLL_MS);
    // The store's figures in the header.
    getJson('/api/traces?limit=0').then(
      (listing) => showStoreStats(listing.stored, listing.evicted, listing.limits),
      () => {});
  }

  function renderTrace(trace, selectedId, onSelect) {
    const started = performance.now();
    const total = Math.max(trace.duration_nanos, 1);
    const percent = (nanos) => (100 * nanos / total) + '%';

    const head = el('div', 'trace-head');
    const title = el('h1');
    title.append(serviceChip(trace.root_service), el('span', 'root-operation', trace.root_operation));
    if (trace.root_missing) title.append(' ', el('span', 'missing', '(root not received)'));
    const meta = el('div', 'meta');
    meta.append(
      el('span', null, 'Trace ' + trace.trace_id),
      el('span', null, formatTime(trace.start_unix_ms)),
      el('span', null, formatDuration(trace.duration_nanos)),
      el('span', null, trace.span_count + ' spans'),
      el('span', null, trace.services.length + (trace.services.length === 1 ? ' service' : ' services')));
    if (trace.error_count > 0) {
      meta.append(el('span', 'error-mark', trace.error_count + (trace.error_count === 1 ? ' error' : ' errors')));
    }
    if (trace.spans_not_kept > 0) {
      meta.append(el('span', 'error-text', trace.spans_not_kept + ' spans not kept (store full)'));
    }
    const back = el('a', null, '← all traces');
    back.href = '/';
    head.append(back, title, meta);

    const waterfall = el('div', 'waterfall');
    waterfall.id = 'waterfall';
    const axis = el('div', 'axis');
    const axisTrack = el('div', 'track');
    for (let i = 0; i <= 4; i++) {
      const tick = el('div', 'tick' + (i === 4 ? ' last' : ''), formatDuration(Math.round(total * i / 4)));
      tick.style.left = (25 * i) + '%';
      axisTrack.append(tick);
    }
    axis.append(el('div', 'label-cell', 'Service and operation'), axisTrack);
    waterfall.append(axis);

    const rowsById = new Map();
    const entries = [];
    let detail = null;
    function select(row, span) {
      if (detail) detail.remove();
      for (const other of waterfall.querySelectorAll('.span-row.selected')) other.classList.remove('selected');
      if (detail && detail.dataset.spanId === span.span_id) {
        detail = null;
        onSelect(null);
        return;
      }
      row.classList.add('selected');
      detail = spanDetail(span, (id) => {
        const target = rowsById.get(id);
        if (target) {
          target.row.scrollIntoView({ block: 'center' });
          select(target.row, target.span);
        }
      });
      row.after(detail);
      onSelect(span.span_id);
    }

    const fragment = document.createDocumentFragment();
    for (const span of trace.spans) {
      const row = el('div', 'span-row' + (span.error ? ' error' : '') + (span.orphan ? ' orphan' : ''));
      row.dataset.spanId = span.span_id;
      row.dataset.index = String(entries.length);
      row.dataset.depth = String(span.depth);
      if (span.parent_id) row.dataset.parentId = span.parent_id;
      const label = el('div', 'label-cell');
      label.style.paddingLeft = (8 + 14 * Math.min(span.depth, MAX_INDENT)) + 'px';
      label.append(serviceChip(span.service), el('span', 'operation', span.operation));
      if (span.kind) label.append(el('span', 'kind', span.kind));
      if (span.error) label.append(' ', el('span', 'error-mark', 'error'));
      if (span.orphan) label.append(el('span', 'orphan-mark', '(parent ' + span.parent_id + ' not received)'));
      label.title = span.service + ': ' + span.operation;
      const track = el('div', 'track');
      const bar = el('div', 'bar');
      bar.style.left = percent(span.offset_nanos);
      bar.style.width = percent(span.duration_nanos);
      bar.style.background = serviceColor(span.service);
      for (const log of span.logs) {
        const mark = el('div', 'log-mark');
        const within = span.duration_nanos > 0
          ? (log.offset_nanos - span.offset_nanos) / span.duration_nanos : 0;
        mark.style.left = (100 * Math.min(Math.max(within, 0), 1)) + '%';
        mark.title = log.fields.map((f) => f.key + '=' + f.value).join(', ');
        bar.append(mark);
      }
      // The duration beside the bar where there is room, else inside it.
      const barLabel = el('div', 'bar-label', formatDuration(span.duration_nanos));
      const end = span.offset_nanos + span.duration_nanos;
      if (end <= total * 0.85) {
        barLabel.style.left = percent(end);
      } else if (span.offset_nanos >= total * 0.15) {
        barLabel.style.right = (100 - 100 * span.offset_nanos / total) + '%';
      } else {
        barLabel.classList.add('inside');
        barLabel.style.left = percent(span.offset_nanos);
      }
      track.append(bar, barLabel);
      row.append(label, track);
      entries.push({ row, span });
      if (!rowsById.has(span.span_id)) rowsById.set(span.span_id, { row, span });
      fragment.append(row);
    }
    const built = performance.now();
    // One listener for all the rows.
    waterfall.addEventListener('click', (event) => {
      const row = event.target.closest('.span-row');
      if (row) select(row, entries[Number(row.dataset.index)].span);
    });
    waterfall.append(fragment);
    app.replaceChildren(head, waterfall);
    document.body.dataset.buildMs = (built - started).toFixed(1);
    const reselect = selectedId && rowsById.get(selectedId);
    if (reselect) select(reselect.row, reselect.span);
    // Layout included: reading a size forces it.
    void waterfall.offsetHeight;
    const elapsed = performance.now() - started;
    document.body.dataset.renderMs = elapsed.toFixed(1);
    document.body.dataset.readyMs = performance.now().toFixed(1);
    document.body.dataset.renderedSpans = String(trace.spans.length);
    console.log('rendered ' + trace.spans.length + ' spans in ' + elapsed.toFixed(1) + ' ms');
  }

  function spanDetail(span, goTo) {
    const detail = el('div', 'detail');
    detail.dataset.spanId = span.span_id;
    const facts = el('table', 'facts');
    const fact = (table, key, value, className) => {
      const row = el('tr', className);
      row.append(el('td', 'key', key), el('td', 'value', value));
      table.append(row);
      return row;
    };
    fact(facts, 'service', span.service);
    fact(facts, 'operation', span.operation);
    fact(facts, 'span id', span.span_id);
    fact(facts, 'start', '+' + formatDuration(span.offset_nanos) + ' into the trace');
    fact(facts, 'duration', formatDuration(span.duration_nanos));
    detail.append(facts);

    detail.append(el('h3', null, 'Tags'));
    if (span.tags.length === 0) detail.append(el('p', 'empty', 'none'));
    const tags = el('table', 'tags');
    for (const tag of span.tags) fact(tags, tag.key, tag.value, 'tag');
    detail.append(tags);

    detail.append(el('h3', null, 'Logs'));
    if (span.logs.length === 0) detail.append(el('p', 'empty', 'none'));
    const logs = el('table', 'logs');
    for (const log of span.logs) {
      const row = el('tr', 'log');
      const at = log.offset_nanos - span.offset_nanos;
      row.append(el('td', 'log-time', (at < 0 ? '-' : '+') + formatDuration(Math.abs(at))));
      row.append(el('td', 'value', log.fields.map((f) => f.key + '=' + f.value).join('\n')));
      logs.append(row);
    }
    detail.append(logs);

    detail.append(el('h3', null, 'References'));
    if (span.references.length === 0) detail.append(el('p', 'empty', 'none (a root span)'));
    const references = el('table', 'references');
    for (const reference of span.references) {
      const row = el('tr', 'reference');
      const target = el('td', 'value');
      if (reference.in_trace) {
        const link = el('a', null, reference.span_id);
        link.href = '#';
        link.addEventListener('click', (event) => {
          event.preventDefault();
          event.stopPropagation();
          goTo(reference.span_id);
        });
        target.append(link);
      } else {
        target.append(reference.span_id + ' (not received)');
      }
      row.append(el('td', 'key', reference.relationship), target);
      references.append(row);
    }
    detail.append(references);
    detail.addEventListener('click', (event) => event.stopPropagation());
    return detail;
  }

  const match = location.pathname.match(/^\/trace\/([^/]+)$/);
  if (match) {
    traceView(decodeURIComponent(match[1]));
  } else {
    listView();
  }
})();

/* ModelHub web UI: the model card and a way to run the model, for any contributor package.
 *
 * Plain script, no build step, no third-party code. It talks only to the public REST API,
 * by URLs relative to the page (so it also works behind a path prefix). Everything the server
 * or the contributor's config says is inserted as text, never parsed as HTML.
 */
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  // Longer label lists are cut, with a note; the raw JSON below the result has them all.
  const MAX_BARS = 10;
  const percent = new Intl.NumberFormat(undefined, {
    style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1,
  });
  const LICENCES = [
    ['model_license', 'Model'],
    ['sample_data_license', 'Sample data'],
    ['modelhub_license', 'ModelHub engine'],
    ['modelhub_acknowledgements', 'Third-party software'],
  ];

  /** A new element; `text` sets its text, other props become attributes. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }

  /** The URL if it is http(s), else null: a config or answer must not smuggle in javascript:. */
  function safeHref(url) {
    try {
      const parsed = new URL(url, document.baseURI);
      return ['http:', 'https:'].includes(parsed.protocol) ? parsed.href : null;
    } catch {
      return null;
    }
  }

  /** Call a REST route; resolves with its JSON, rejects with a message fit for the user. */
  async function api(path, options) {
    let response;
    try {
      response = await fetch(path, options);
    } catch {
      throw new Error('Could not reach the server.');
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: a proxy's error page, say. The status line is all there is to show.
    }
    if (body && typeof body === 'object' && !Array.isArray(body) && 'error' in body) {
      throw new Error(String(body.error));
    }
    if (!response.ok || body === null) {
      throw new Error(`The server answered ${response.status} ${response.statusText}`.trim() + '.');
    }
    return body;
  }

  function showError(message) {
    $('error').textContent = message;
    $('error').hidden = !message;
  }

  function formatSeconds(seconds) {
    if (typeof seconds !== 'number') return '';
    return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(2)} s`;
  }

  /* ---- model card ------------------------------------------------------------------- */

  async function loadCard() {
    const config = await api('api/get_config');
    const meta = config.meta || {};
    const model = config.model || {};
    const name = meta.name || 'Unnamed model';
    document.title = `${name} · ModelHub`;
    $('model-name').textContent = name;
    $('model-area').textContent = [meta.application_area, meta.task].filter(Boolean).join(' · ');
    $('model-task').textContent = meta.task_extended || '';
    $('model-description').textContent = model.description || '';

    const io = model.io || {};
    const input = io.input || {};
    // The server checks uploads against `input.format` (else `input.single.format`).
    const formats = input.format || (input.single && input.single.format) || [];
    $('accepted-formats').textContent = formats.length
      ? `Accepted: ${formats.map((type) => type.split('/').pop().toUpperCase()).join(', ')}`
      : '';

    const outputs = (io.output || []).map((o) => `${o.name} (${o.type})`).join(', ');
    const facts = [
      ['Task', meta.task],
      ['Data', meta.data_type],
      ['Architecture', model.architecture],
      ['Learning', model.learning_type],
      ['Outputs', outputs],
      ['Provenance', model.provenance],
      ['Training data', meta.data_source],
    ].filter(([, value]) => value);
    $('model-facts').replaceChildren(...facts.flatMap(([term, value]) => {
      const href = /^https?:\/\//i.test(value) ? safeHref(value) : null;
      const shown = href ? el('a', { href, rel: 'noopener noreferrer', text: value }) : value;
      return [el('dt', { text: term }), el('dd', {}, shown)];
    }));

    renderPublication(config.publication);
  }

  function renderPublication(publication) {
    if (!publication || !publication.title) return;
    const href = publication.url ? safeHref(publication.url) : null;
    $('publication-title').replaceChildren(href
      ? el('a', { href, rel: 'noopener noreferrer', text: publication.title })
      : publication.title);
    $('publication-meta').textContent = [
      publication.authors, publication.source || publication.journal, publication.year,
    ].filter(Boolean).join(' · ');
    $('publication-abstract').textContent = publication.abstract || '';
    $('publication-abstract-box').hidden = !publication.abstract;
    $('publication').hidden = false;
  }

  async function loadLegal() {
    const legal = await api('api/get_legal');
    $('legal-texts').replaceChildren(...LICENCES
      .filter(([key]) => legal[key])
      .map(([key, title]) => el('section', { class: 'licence', 'data-licence': key },
        el('h3', { text: title }), el('pre', { text: legal[key] }))));
  }

  /* ---- samples ------------------------------------------------------------------------ */

  /** get_samples answers absolute URLs; only the file name is needed (and trusted). */
  function sampleName(url) {
    const path = new URL(url, document.baseURI).pathname;
    return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
  }

  async function loadSamples() {
    const list = $('samples');
    const names = (await api('api/get_samples')).map(sampleName);
    list.replaceChildren(...names.map((name) => {
      const url = `api/samples/${encodeURIComponent(name)}`;
      // The caption names the sample, so the picture itself is decorative (alt="").
      const picture = el('img', { src: url, alt: '', loading: 'lazy', decoding: 'async' });
      // A file the browser cannot show (NIfTI, .npy, ...) keeps just its name.
      picture.addEventListener('error', () => picture.remove());
      const button = el('button', {
        type: 'button', class: 'sample', 'data-filename': name,
        'aria-label': `Predict sample ${name}`,
      }, picture, el('span', { class: 'sample-name', text: name }));
      button.addEventListener('click', () => predict(
        name, () => api(`api/predict_sample?filename=${encodeURIComponent(name)}`), url));
      return el('li', {}, button);
    }));
    if (!names.length) list.append(el('li', { class: 'hint', text: 'This model has no samples.' }));
    list.dataset.state = 'ready';
  }

  /* ---- running the model -------------------------------------------------------------- */

  let latestRequest = 0; // only the answer to the latest request is shown
  let previewObjectUrl = null;

  /** Run one prediction: `request` returns the API's promise; `preview` is an image URL or null. */
  async function predict(source, request, preview) {
    const ticket = ++latestRequest;
    const result = $('result');
    showError('');
    result.dataset.state = 'loading';
    result.dataset.source = source;
    result.setAttribute('aria-busy', 'true');
    result.replaceChildren(el('p', { class: 'status', text: `Running the model on ${source}…` }));
    revealResult();
    try {
      const answer = await request();
      if (ticket !== latestRequest) return;
      renderResult(answer, source, preview);
      result.dataset.state = 'done';
    } catch (error) {
      if (ticket !== latestRequest) return;
      result.replaceChildren(el('p', { class: 'hint', text: `No result for ${source}.` }));
      result.dataset.state = 'error';
      showError(error.message);
    } finally {
      if (ticket === latestRequest) result.removeAttribute('aria-busy');
    }
  }

  /** On a phone the result sits below the inputs: bring it into view. */
  function revealResult() {
    const panel = $('result-panel');
    if (panel.getBoundingClientRect().top > window.innerHeight * 0.6) panel.scrollIntoView();
  }

  function renderResult(answer, source, preview) {
    const head = el('div', { class: 'result-head' });
    if (preview) {
      const picture = el('img', { class: 'preview', src: preview, alt: `Input: ${source}` });
      picture.addEventListener('error', () => picture.remove());
      head.append(picture);
    }
    const time = formatSeconds(answer.processing_time);
    head.append(el('div', {},
      el('p', { class: 'result-source', text: source }),
      el('p', { id: 'processing-time', class: 'hint', text: time && `Processing time: ${time}` })));

    const outputs = Array.isArray(answer.output) ? answer.output : [];
    const raw = el('details', { class: 'raw' },
      el('summary', { text: 'Full answer (JSON)' }),
      el('pre', { text: JSON.stringify(answer, null, 2) }));
    $('result').replaceChildren(head, ...outputs.map(renderOutput), raw);
  }

  function renderOutput(output) {
    const section = el('section', { class: 'output', 'data-output-type': String(output.type) },
      el('h3', {}, String(output.name ?? 'Output'), ' ',
        el('span', { class: 'output-type', text: String(output.type ?? '') })));
    if (output.description) section.append(el('p', { class: 'hint', text: output.description }));
    section.append(renderPrediction(output));
    return section;
  }

  function isLabelList(prediction) {
    return Array.isArray(prediction) && prediction.every(
      (entry) => entry && 'label' in entry && typeof entry.probability === 'number');
  }

  function renderPrediction({ type, prediction, shape }) {
    if (type === 'label_list' && isLabelList(prediction)) return renderBars(prediction);
    // Array outputs are written to an HDF5 file on the server; the prediction is its URL.
    const href = typeof prediction === 'string' ? safeHref(prediction) : null;
    if (href) {
      const size = Array.isArray(shape) ? `, shape ${shape.join(' × ')}` : '';
      return el('p', {}, el('a', { class: 'download', href, download: '' },
        `Download (HDF5${size})`));
    }
    return el('pre', { class: 'json', text: JSON.stringify(prediction, null, 2) });
  }

  function renderBars(entries) {
    const sorted = [...entries].sort((a, b) => b.probability - a.probability);
    const list = el('ol', { class: 'bars' }, ...sorted.slice(0, MAX_BARS).map((entry) => {
      const share = Math.min(Math.max(entry.probability, 0), 1);
      const fill = el('span', { class: 'bar-fill' });
      fill.style.width = `${share * 100}%`; // via CSSOM, which a strict CSP still allows
      return el('li', { class: 'bar', 'data-probability': String(entry.probability) },
        el('span', { class: 'bar-label', text: String(entry.label) }),
        el('span', { class: 'bar-value', text: percent.format(share) }),
        el('span', { class: 'bar-track', 'aria-hidden': 'true' }, fill));
    }));
    const hidden = sorted.length - MAX_BARS;
    if (hidden <= 0) return list;
    return el('div', {}, list,
      el('p', { class: 'hint', text: `${hidden} more in the full answer below.` }));
  }

  /* ---- inputs --------------------------------------------------------------------------- */

  function upload(file) {
    const body = new FormData();
    body.append('file', file, file.name);
    if (previewObjectUrl) URL.revokeObjectURL(previewObjectUrl);
    previewObjectUrl = file.type.startsWith('image/') ? URL.createObjectURL(file) : null;
    predict(file.name || 'your file', () => api('api/predict', { method: 'POST', body }),
      previewObjectUrl);
  }

  function wireInputs() {
    const input = $('file-input');
    input.addEventListener('change', () => {
      if (input.files.length) upload(input.files[0]);
      input.value = ''; // choosing the same file again must fire `change` again
    });

    const zone = $('dropzone');
    zone.addEventListener('dragover', (event) => {
      event.preventDefault();
      zone.classList.add('dragging');
    });
    zone.addEventListener('dragleave', (event) => {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove('dragging');
    });
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      zone.classList.remove('dragging');
      if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
    });
    // A file dropped beside the zone must not make the browser navigate away from the page.
    window.addEventListener('dragover', (event) => event.preventDefault());
    window.addEventListener('drop', (event) => event.preventDefault());

    $('url-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const url = $('url-input').value.trim();
      predict(url, () => api(`api/predict?fileurl=${encodeURIComponent(url)}`), safeHref(url));
    });
  }

  function showThumbnail() {
    const thumbnail = $('thumbnail');
    // Listeners first, then src: a cached picture could otherwise load unnoticed.
    thumbnail.addEventListener('load', () => { thumbnail.hidden = false; });
    thumbnail.src = 'api/thumbnail/thumbnail.jpg';
  }

  async function start() {
    wireInputs();
    showThumbnail();
    const steps = [['Model description', loadCard], ['Licences', loadLegal], ['Samples', loadSamples]];
    const outcomes = await Promise.allSettled(steps.map(([, step]) => step()));
    const failures = outcomes
      .map((outcome, i) => outcome.status === 'rejected' && `${steps[i][0]}: ${outcome.reason.message}`)
      .filter(Boolean);
    if (failures.length) showError(failures.join('\n'));
  }

  start();
})();

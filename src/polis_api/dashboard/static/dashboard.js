// The organiser's dashboard (docs/dashboard.md). Plain browser JavaScript, no build
// step, no libraries: it reads polis-api's public REST API with a pasted token.
"use strict";

(() => {
  const TOKEN_KEY = "polis-dashboard-token";
  const params = new URLSearchParams(location.search);
  // ?refresh=<seconds> for a wall screen that wants it faster (or slower).
  const REFRESH_SECONDS = Math.max(1, Number(params.get("refresh")) || 30);
  // An SVG stays responsive up to a few thousand marks; a larger campaign is drawn in part.
  const MAP_LIMIT = 5000;
  const NO_COLOUR = "#95A5A6";
  const MINT_HINT = "Mint one on the server with: polis-api token --role viewer";

  const $ = (selector) => document.querySelector(selector);
  const remembered = new Map(); // url -> {etag, body}: what If-None-Match revalidates
  let campaignId = "";
  let statuses = { byId: new Map(), colourOfState: new Map(), problem: "" };
  let timer = 0;
  let tokenRefused = false;

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.title = problem.title || "";
    }
  }

  // ---- talking to the API -------------------------------------------------------

  async function api(path, accept = "application/json") {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`, Accept: accept };
    const known = remembered.get(path);
    if (known) headers["If-None-Match"] = known.etag;
    // no-store: the browser's cache must not answer for us, so a 304 reaches this code.
    const response = await fetch(path, { headers, cache: "no-store" });
    if (response.status === 304 && known) return { body: known.body, changed: false };
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    const body = await response.json();
    const etag = response.headers.get("ETag");
    if (etag) remembered.set(path, { etag, body });
    return { body, changed: true };
  }

  async function problemOf(response) {
    try {
      return await response.json();
    } catch {
      return { title: response.statusText };
    }
  }

  function explain(error, what) {
    if (!(error instanceof ApiError)) return `Could not reach the server for ${what}: ${error.message}`;
    switch (error.status) {
      case 401:
        return `The server refused the token (401 ${error.title}): ${error.message} ` +
          `Paste a valid token. ${MINT_HINT}`;
      case 403:
        return `This token may not read ${what} (403): ${error.message}`;
      case 404:
        return `${what} is not available from this server (404): ${error.message}`;
      default:
        return `${what} failed (${error.status} ${error.title}): ${error.message}`;
    }
  }

  // A refused token stops everything; any other failure is shown where it happened.
  function report(error, what, where) {
    if (error instanceof ApiError && error.status === 401) {
      tokenRefused = true;
      stopRefreshing();
      $("#freshness").textContent = "Not refreshing: the token was refused.";
      showMessage(explain(error, what));
      return;
    }
    if (where) {
      const notice = where.querySelector(".notice");
      notice.textContent = explain(error, what);
      notice.hidden = false;
    } else {
      showMessage(explain(error, what));
    }
  }

  function showMessage(text) {
    $("#message").textContent = text;
    $("#message").hidden = !text;
  }

  // ---- token and campaign ----------------------------------------------------------

  async function loadCampaigns() {
    showMessage("");
    tokenRefused = false;
    const select = $("#campaign");
    try {
      const { body } = await api("v1/campaigns?limit=1000&sort=/data/name");
      select.replaceChildren(option("", body.data.length ? "Choose a campaign" : "No campaigns yet"));
      for (const campaign of body.data) select.append(option(campaign.id, campaign.data.name));
      select.disabled = false;
      const wanted = new URLSearchParams(location.hash.slice(1)).get("campaign");
      if (wanted && body.data.some((campaign) => campaign.id === wanted)) {
        select.value = wanted;
        chooseCampaign(wanted);
      }
    } catch (error) {
      select.replaceChildren(option("", "(paste a token first)"));
      select.disabled = true;
      report(error, "the campaigns");
    }
  }

  function chooseCampaign(id) {
    closeBoard();
    history.replaceState(null, "", id ? `#campaign=${id}` : location.pathname + location.search);
    campaignId = id;
    $("#board").hidden = !id;
    $("#refresh").disabled = !id;
    if (id) refresh(true);
  }

  function closeBoard() {
    stopRefreshing();
    remembered.clear();
    campaignId = "";
    $("#board").hidden = true;
    $("#refresh").disabled = true;
  }

  function stopRefreshing() {
    clearTimeout(timer);
    timer = 0;
  }

  // ---- one refresh ------------------------------------------------------------------

  // Progress is asked first, with If-None-Match. A 304 means no door and no knock
  // changed, so the map and the review list are kept as they are.
  async function refresh(first = false) {
    stopRefreshing();
    const id = campaignId;
    const base = `v1/campaigns/${id}`;
    let progress = null;
    try {
      progress = await api(`${base}/progress`);
    } catch (error) {
      if (id !== campaignId) return;
      clearProgress();
      report(error, "Progress", $("#by-state"));
    }
    if (id !== campaignId || tokenRefused) return;
    // Without progress nothing says what changed: read the rest again.
    if (first || !progress || progress.changed) {
      await loadStatuses(base);
      if (progress) renderProgress(progress.body);
      await Promise.all([loadMap(base), loadReview(base)]);
    }
    if (id !== campaignId || tokenRefused) return;
    showFreshness(progress);
    // One pending refresh at most, even when "Refresh" is pressed mid-way.
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_SECONDS * 1000);
  }

  // The pins' colours; without them everything is drawn grey and a notice says why.
  async function loadStatuses(base) {
    let body;
    try {
      ({ body } = await api(`${base}/statuses?limit=1000`));
    } catch (error) {
      statuses = { byId: new Map(), colourOfState: new Map(), problem: explain(error, "The statuses") };
      return;
    }
    const byId = new Map();
    const colourOfState = new Map();
    for (const status of body.data) {
      byId.set(status.id, status.data);
      // Where two statuses share a state, the first listed gives the state its colour.
      if (!colourOfState.has(status.data.contactState) && status.data.pinColor) {
        colourOfState.set(status.data.contactState, status.data.pinColor);
      }
    }
    statuses = { byId, colourOfState, problem: "" };
  }

  function showFreshness(progress) {
    const now = new Date().toLocaleTimeString();
    const asOf = progress && progress.body.meta ? progress.body.meta.asOf : "";
    const unchanged = Boolean(progress) && !progress.changed;
    $("#freshness").textContent = unchanged
      ? `Checked ${now}: nothing changed${asOf ? ` since ${asOf}` : ""}.`
      : `Updated ${now}${asOf ? ` (as of ${asOf})` : ""}; checking every ${REFRESH_SECONDS} s.`;
  }

  // ---- progress ---------------------------------------------------------------------

  function renderProgress({ data }) {
    $("#by-state .notice").textContent = statuses.problem;
    $("#by-state .notice").hidden = !statuses.problem;
    setMetric("doors", count(data.doors));
    setMetric("contacted", count(data.contacted));
    setMetric("contactRate", percent(data.contactRate));
    setMetric("successful", count(data.successful));
    renderStates(data.byState || {});
    renderStatuses(data.byStatus || {}, data.doors);
    renderDays(data.byDay || []);
    renderCanvassers(data.byCanvasser || []);
  }

  function clearProgress() {
    for (const name of ["doors", "contacted", "contactRate", "successful"]) setMetric(name, "–");
    $("#state-bar").replaceChildren();
    $("#state-legend").replaceChildren();
    for (const body of document.querySelectorAll("#status-table tbody, #by-day tbody, #by-canvasser tbody")) {
      body.replaceChildren();
    }
  }

  function setMetric(name, text) {
    $(`[data-metric="${name}"]`).textContent = text;
  }

  function renderStates(byState) {
    const entries = Object.entries(byState).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const bar = entries.map(([state, n]) => {
      const part = element("div", { title: `${label(state)}: ${count(n)}` });
      part.style.flexGrow = String(n);
      part.style.backgroundColor = stateColour(state);
      return part;
    });
    $("#state-bar").replaceChildren(...bar);
    $("#state-legend").replaceChildren(...entries.map(([state, n]) => {
      const item = element("li", { "data-state": state });
      item.append(swatch(stateColour(state)), element("span", { class: "name" }, label(state)),
        element("span", { class: "count" }, count(n)));
      return item;
    }));
  }

  function renderStatuses(byStatus, doors) {
    const rows = Object.entries(byStatus).sort((a, b) => b[1] - a[1]).map(([id, n]) => {
      const status = statuses.byId.get(id);
      const name = element("td");
      name.append(swatch(status ? status.pinColor || NO_COLOUR : NO_COLOUR), status ? status.name : id);
      return row([name, cell(count(n), "num")], { "data-status-id": id });
    });
    // A door put on a list without a status has a state but no pin of its own yet.
    const withoutStatus = doors - Object.values(byStatus).reduce((sum, n) => sum + n, 0);
    if (withoutStatus > 0) {
      const name = element("td", { class: "muted" });
      name.append(swatch(NO_COLOUR), "no status yet");
      rows.push(row([name, cell(count(withoutStatus), "num")], { "data-status-id": "" }));
    }
    $("#status-table tbody").replaceChildren(...rows);
  }

  function renderDays(byDay) {
    const most = Math.max(1, ...byDay.map((day) => day.interactions));
    $("#by-day tbody").replaceChildren(...byDay.map((day) => {
      const bar = element("div", { class: "day-bar" });
      bar.style.width = `${(100 * day.interactions) / most}%`;
      const graph = element("td", { class: "graph" });
      graph.append(bar);
      return row([cell(day.date), cell(count(day.interactions), "num"),
        cell(count(day.contacted), "num"), graph], { "data-date": day.date });
    }));
  }

  function renderCanvassers(byCanvasser) {
    $("#by-canvasser tbody").replaceChildren(...byCanvasser.map((person) => row([
      cell(person.userId, "id"), cell(count(person.interactions), "num"),
      cell(count(person.contacted), "num"), cell(count(person.successful), "num"),
    ], { "data-user-id": person.userId })));
  }

  // ---- map --------------------------------------------------------------------------

  async function loadMap(base) {
    const section = $("#map-section");
    try {
      const doors = `${base}/contact-households?limit=${MAP_LIMIT}&count=true`;
      const { body } = await api(doors, "application/geo+json");
      section.querySelector(".notice").hidden = true;
      drawMap(body.features || [], body.meta ? body.meta.total : undefined);
    } catch (error) {
      $("#map").replaceChildren();
      $("#map-caption").textContent = "";
      report(error, "The doors' map", section);
    }
  }

  function drawMap(features, total) {
    const svg = $("#map");
    const width = 600;
    const height = 420;
    const place = projection(features, width, height, 16);
    const radius = Math.max(1.5, Math.min(6, 240 / Math.sqrt(features.length || 1)));
    const marks = features.map((feature) => {
      const [x, y] = place(feature.geometry.coordinates);
      const props = feature.properties || {};
      const mark = svgElement("circle", {
        cx: x.toFixed(1), cy: y.toFixed(1), r: radius.toFixed(1),
        fill: props.pinColor || stateColour(props.state), "data-door-id": props.id,
      });
      const status = statuses.byId.get(props.statusId);
      mark.append(svgElement("title", {}, status ? `${status.name} (${label(props.state)})` : label(props.state)));
      return mark;
    });
    svg.replaceChildren(svgElement("rect", { class: "land", width, height }), ...marks);
    // The total counts every door with coordinates, drawn or not (geography.md, count).
    $("#map-caption").textContent = total > features.length
      ? `The first ${count(features.length)} of ${count(total)} doors with coordinates are drawn.`
      : `${count(features.length)} doors with coordinates; doors without any are not drawn.`;
  }

  // Equirectangular, with longitude shrunk by cos(latitude) so a street keeps its shape.
  function projection(features, width, height, margin) {
    const points = features.map((feature) => feature.geometry.coordinates);
    const lngs = points.map((point) => point[0]);
    const lats = points.map((point) => point[1]);
    const [west, east] = [Math.min(...lngs), Math.max(...lngs)];
    const [south, north] = [Math.min(...lats), Math.max(...lats)];
    const squeeze = Math.cos((((north + south) / 2) * Math.PI) / 180);
    const spanX = Math.max((east - west) * squeeze, 1e-9);
    const spanY = Math.max(north - south, 1e-9);
    const scale = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY);
    const left = (width - spanX * scale) / 2;
    const top = (height - spanY * scale) / 2;
    return ([lng, lat]) => [left + (lng - west) * squeeze * scale, top + (north - lat) * scale];
  }

  // ---- review -----------------------------------------------------------------------

  async function loadReview(base) {
    const section = $("#review");
    try {
      const { body } = await api(`${base}/review`);
      section.querySelector(".notice").hidden = true;
      section.querySelector("tbody").replaceChildren(...body.data.map((person) => row([
        cell(person.userId, "id"), cell(count(person.interactions), "num"),
        cell(count(person.flagged), "num"), cell(percent(person.flaggedShare), "num"),
        cell(Object.entries(person.flags || {}).map(([flag, n]) => `${flag} ${n}`).join(", ")),
      ], { "data-user-id": person.userId })));
    } catch (error) {
      section.querySelector("tbody").replaceChildren();
      report(error, "The review list", section);
    }
  }

  // ---- small helpers ----------------------------------------------------------------

  function stateColour(state) {
    return statuses.colourOfState.get(state) || NO_COLOUR;
  }

  function label(state) {
    return String(state || "no state").replaceAll("-", " ");
  }

  function count(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  function percent(fraction) {
    return `${(100 * Number(fraction || 0)).toFixed(1)}%`;
  }

  function element(tag, attributes = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function svgElement(tag, attributes = {}, text = "") {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function option(value, text) {
    const node = element("option", { value });
    node.textContent = text;
    return node;
  }

  function cell(text, className) {
    return element("td", className ? { class: className } : {}, String(text));
  }

  function row(cells, attributes) {
    const node = element("tr", attributes);
    node.append(...cells);
    return node;
  }

  function swatch(colour) {
    const node = element("span", { class: "swatch" });
    node.style.backgroundColor = colour;
    return node;
  }

  // ---- wiring -----------------------------------------------------------------------

  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#token").value.trim().replace(/^Bearer\s+/i, "");
    if (!token) return showMessage(`Paste a token first. ${MINT_HINT}`);
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#token").value = "";
    closeBoard(); // the campaign in the address is opened again if this token may read it
    loadCampaigns();
  });
  $("#forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    chooseCampaign("");
    $("#campaign").replaceChildren(option("", "(paste a token first)"));
    $("#campaign").disabled = true;
    showMessage("");
  });
  $("#campaign").addEventListener("change", (event) => chooseCampaign(event.target.value));
  $("#refresh").addEventListener("click", () => refresh());
  if (sessionStorage.getItem(TOKEN_KEY)) loadCampaigns();
})();

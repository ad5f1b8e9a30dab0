// The operator dashboard: reads this service's admin API with the admin
// token, which is kept in sessionStorage for this tab only. Everything is
// rendered with DOM calls and textContent, never parsed as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "switchboard.adminToken";
  const REFRESH_MS = 4000;

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let refreshing = false;
  let overview = null;
  let selectedTenant = sessionStorage.getItem("switchboard.tenant");
  let openEvent = null; // { tenant, eventId }
  // What each panel last showed, so a refresh that changes nothing leaves
  // it (and the sections an operator opened in it) alone.
  const shown = new Map();

  function changed(panel, data) {
    const text = JSON.stringify(data);
    if (shown.get(panel) === text) return false;
    shown.set(panel, text);
    return true;
  }

  // ------------------------------------------------------------- helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function replace(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  }

  function short(digest) {
    return digest ? String(digest).slice(0, 12) : "";
  }

  function when(text) {
    if (!text) return "";
    const d = new Date(text);
    return Number.isNaN(d.getTime()) ? String(text) : d.toLocaleString();
  }

  function badge(state) {
    return el("span", { class: "badge state-" + state }, state);
  }

  function emptyRow(columns, text) {
    return el("tr", {}, el("td", { colspan: columns, class: "muted" }, text));
  }

  function pre(value) {
    return el("pre", {}, JSON.stringify(value, null, 2));
  }

  function fold(summary, value) {
    return el("details", {}, el("summary", {}, summary), pre(value));
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function notice(message) {
    $("notice").textContent = message;
  }

  // ----------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new ApiError(401, "not signed in");
    const response = await fetch(path, {
      method,
      cache: "no-store",
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (response.status === 401) {
      signOut("The admin token was refused; enter it again.");
      throw new ApiError(401, "the admin token was refused");
    }
    if (!response.ok) {
      const message = body && body.error ? body.error : response.status + " " + response.statusText;
      throw new ApiError(response.status, message);
    }
    return body;
  }

  const tenantPath = (tenant) => "/admin/tenants/" + encodeURIComponent(tenant);

  // ------------------------------------------------------------ sign in

  function signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    showError("");
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(timer);
    timer = null;
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("login").hidden = false;
    $("token").value = "";
    showError(message || "");
    $("token").focus();
  }

  // ---------------------------------------------------------- overview

  async function refresh() {
    if (refreshing || document.hidden) return;
    refreshing = true;
    try {
      overview = await api("GET", "/admin/overview");
      renderTenants(overview.tenants);
      renderFailed(overview.tenants);
      renderTenantChoice(overview.tenants);
      await renderTenantDetails();
      if (openEvent) await renderTimeline();
      $("refreshed").textContent = "Updated " + new Date().toLocaleTimeString();
      showError("");
    } catch (e) {
      if (e.status !== 401) showError("Refresh failed: " + e.message);
    } finally {
      refreshing = false;
    }
  }

  function renderTenants(tenants) {
    const rows = tenants.map((t) => {
      const e = t.events;
      const module = t.module
        ? el("span", { title: t.module.digest }, "v" + t.module.version + " ", el("code", {}, short(t.module.digest)))
        : el("span", { class: "warn" }, "none");
      const shadow = t.shadow
        ? el(
            "span",
            { title: t.shadow.digest },
            t.shadow.matched + " matched, " + t.shadow.differed + " differed",
            t.shadow.errors ? ", " + t.shadow.errors + " errors" : "",
          )
        : el("span", { class: "muted" }, "none");
      return el(
        "tr",
        { dataset: { tenant: t.tenant } },
        el("th", { scope: "row" }, t.tenant),
        el("td", {}, module),
        el("td", { class: "num" }, e.pending),
        el("td", { class: "num" }, e.done),
        el("td", { class: "num" + (e.failed ? " bad" : "") }, e.failed),
        el("td", { class: "num" + (e.dead ? " bad" : "") }, e.dead),
        el("td", { class: "num" }, e.skipped),
        el("td", {}, shadow),
      );
    });
    replace($("tenants-body"), rows.length ? rows : emptyRow(8, "No tenant is configured."));
  }

  function actionButtons(tenant, event) {
    const buttons = [
      el(
        "button",
        {
          type: "button",
          class: "retry",
          dataset: { action: "retry" },
          "aria-label": "Retry event " + event.event_id + " of " + tenant,
          onclick: (ev) => release(ev.currentTarget, tenant, event.event_id, "retry"),
        },
        "Retry",
      ),
    ];
    if (event.status === "dead") {
      buttons.push(
        el(
          "button",
          {
            type: "button",
            class: "skip",
            dataset: { action: "skip" },
            "aria-label": "Skip dead-lettered event " + event.event_id + " of " + tenant,
            onclick: (ev) => release(ev.currentTarget, tenant, event.event_id, "skip"),
          },
          "Skip",
        ),
      );
    }
    return buttons;
  }

  function renderFailed(tenants) {
    const rows = [];
    for (const t of tenants) {
      for (const event of t.needs_attention) {
        rows.push(
          el(
            "tr",
            { dataset: { tenant: t.tenant, eventId: event.event_id, status: event.status } },
            el("td", {}, t.tenant),
            el(
              "td",
              {},
              el(
                "button",
                {
                  type: "button",
                  class: "link",
                  dataset: { action: "view" },
                  "aria-label": "Show the timeline of event " + event.event_id,
                  onclick: () => openTimeline(t.tenant, event.event_id),
                },
                event.event_id,
              ),
              el("div", { class: "muted small" }, event.session_id),
            ),
            el("td", {}, badge(event.status)),
            el("td", { class: "num" }, event.attempts),
            el("td", {}, when(event.at)),
            el("td", { class: "reason" }, event.reason || ""),
            el("td", { class: "actions" }, actionButtons(t.tenant, event)),
          ),
        );
      }
      if (t.needs_attention_total > t.needs_attention.length) {
        const more = t.needs_attention_total - t.needs_attention.length;
        rows.push(emptyRow(7, t.tenant + ": " + more + " older ones not listed (switchboard events list --failed)."));
      }
    }
    replace($("failed-body"), rows.length ? rows : emptyRow(7, "No failed or dead-lettered events."));
  }

  async function release(button, tenant, eventId, how) {
    if (how === "skip" && !window.confirm("Skip " + eventId + "? It will not be applied.")) return;
    button.disabled = true;
    try {
      const path = tenantPath(tenant) + "/events/" + how + "?event_id=" + encodeURIComponent(eventId);
      const answer = await api("POST", path);
      const n = how === "retry" ? answer.requeued : answer.skipped;
      notice((how === "retry" ? "Requeued " : "Skipped ") + n + " event(s): " + eventId);
      await refresh();
    } catch (e) {
      showError(how + " of " + eventId + " failed: " + e.message);
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------- timeline

  function openTimeline(tenant, eventId) {
    openEvent = { tenant, eventId };
    $("timeline").hidden = false;
    renderTimeline().then(() => $("timeline-title").focus());
  }

  async function renderTimeline() {
    if (!openEvent) return;
    const { tenant, eventId } = openEvent;
    let t;
    try {
      t = await api("GET", tenantPath(tenant) + "/events/" + encodeURIComponent(eventId));
    } catch (e) {
      shown.delete("timeline");
      replace($("timeline-body"), el("p", { class: "error" }, "Cannot read " + eventId + ": " + e.message));
      return;
    }
    if (!changed("timeline", t)) return;
    const e = t.event;
    const d = t.decision;
    const steps = [
      el("li", {}, el("strong", {}, "Received "), when(e.received_at), " from ", el("code", {}, e.source), " (event time ", when(e.at), ")"),
    ];
    if (d) {
      const by = d.module_version
        ? ["module v" + d.module_version + " ", el("code", { title: d.module_digest }, short(d.module_digest)), d.live_module ? " (live)" : ""]
        : [d.default_rules ? "the built-in default rules" : "no module"];
      steps.push(el("li", {}, el("strong", {}, "Decided "), when(d.decided_at), " by ", by));
      steps.push(
        el("li", {}, el("strong", {}, "Outcome "), badge(d.state), " at ", when(d.updated_at), d.detail ? ": " + d.detail : ""),
      );
    } else {
      steps.push(el("li", { class: "muted" }, "No decision recorded (none yet, or the decision itself failed and is made again on retry)."));
    }
    steps.push(
      el("li", {}, el("strong", {}, "Now "), badge(e.status), " after " + e.attempts + " attempt(s)", e.reason ? ": " + e.reason : ""),
    );
    const facts = el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Tenant"),
      el("dd", {}, t.tenant),
      el("dt", {}, "Event"),
      el("dd", {}, el("code", {}, e.event_id)),
      el("dt", {}, "Session"),
      el("dd", {}, el("code", {}, e.session_id)),
      el("dt", {}, "Customer queue"),
      el("dd", {}, el("code", {}, e.customer_key)),
      el("dt", {}, "Kustomer"),
      el(
        "dd",
        {},
        t.conversation
          ? ["conversation ", el("code", {}, t.conversation.conversation_id), ", customer ", el("code", {}, t.conversation.customer_id)]
          : el("span", { class: "muted" }, "no conversation linked yet"),
      ),
      el("dt", {}, "Shadow"),
      el("dd", {}, t.shadow ? (t.shadow.outcome || "not decided by the shadow") : el("span", { class: "muted" }, "no shadow running")),
    );
    const parts = [
      el("p", {}, "Event ", el("code", {}, e.event_id), " of ", t.tenant),
      facts,
      el("ol", { class: "steps" }, steps),
    ];
    if (e.status === "failed" || e.status === "dead") {
      parts.push(el("p", { class: "actions" }, actionButtons(t.tenant, e)));
    }
    if (t.session) {
      const rows = t.session.transitions.map((tr) =>
        el(
          "tr",
          { class: tr.this ? "current" : null },
          el("td", {}, el("code", {}, tr.event_id), tr.this ? " (this event)" : ""),
          el("td", {}, badge(tr.status)),
          el("td", {}, when(tr.at)),
          el("td", { class: "reason" }, tr.reason || ""),
        ),
      );
      parts.push(
        el("h3", {}, "Session transitions"),
        el(
          "table",
          {},
          el(
            "thead",
            {},
            el("tr", {}, el("th", { scope: "col" }, "Event"), el("th", { scope: "col" }, "State"), el("th", { scope: "col" }, "Event time"), el("th", { scope: "col" }, "Reason")),
          ),
          el("tbody", {}, rows),
        ),
        fold("Merged session ledger", t.session.ledger),
      );
    }
    if (d) {
      parts.push(fold("Plan", d.plan), fold("Context the plan was decided with", d.context));
    }
    parts.push(fold("Event body", e.body));
    parts.push(
      el(
        "p",
        { class: "muted small" },
        "Not recorded: the time and reason of each attempt (only the latest reason), which actions of a plan were carried out before a failure, and who retried or skipped an event.",
      ),
    );
    replace($("timeline-body"), parts);
    $("timeline-title").textContent = "Event timeline: " + e.event_id;
  }

  // ---------------------------------------------------- tenant details

  function renderTenantChoice(tenants) {
    const select = $("tenant");
    const ids = tenants.map((t) => t.tenant);
    if (!ids.includes(selectedTenant)) selectedTenant = ids[0] || null;
    const current = Array.from(select.options).map((o) => o.value);
    if (current.join("\n") !== ids.join("\n")) {
      replace(select, ids.map((id) => el("option", { value: id }, id)));
    }
    if (selectedTenant) select.value = selectedTenant;
  }

  async function renderTenantDetails() {
    const tenant = selectedTenant;
    if (!tenant) return;
    const entry = overview.tenants.find((t) => t.tenant === tenant);
    await Promise.all([renderModules(tenant), renderShadow(tenant, entry), renderAgents(tenant, entry)]);
  }

  async function renderModules(tenant) {
    const body = $("modules-body");
    let m;
    try {
      m = await api("GET", tenantPath(tenant) + "/modules");
    } catch (e) {
      replace(body, emptyRow(6, "Cannot read the modules: " + e.message));
      return;
    }
    const rows = m.versions
      .slice()
      .reverse()
      .map((v) => {
        const live = v.version === m.live;
        const action = live
          ? el("span", { class: "muted" }, "serving")
          : el(
              "button",
              {
                type: "button",
                dataset: { action: "rollback" },
                "aria-label": "Roll " + tenant + " back to module version " + v.version,
                onclick: (ev) => rollback(ev.currentTarget, tenant, v.version),
              },
              "Roll back to v" + v.version,
            );
        return el(
          "tr",
          { class: live ? "current" : null },
          el("td", { class: "num" }, v.version),
          el("td", {}, el("code", { title: v.digest }, short(v.digest))),
          el("td", {}, v.source),
          el("td", {}, when(v.deployed_at)),
          el("td", {}, live ? badge("live") : ""),
          el("td", {}, action),
        );
      });
    replace(body, rows.length ? rows : emptyRow(6, "No module deployed."));
  }

  async function rollback(button, tenant, version) {
    if (!window.confirm("Make version " + version + " live for " + tenant + "?")) return;
    button.disabled = true;
    try {
      const info = await api("POST", tenantPath(tenant) + "/modules/rollback?version=" + encodeURIComponent(version));
      notice(tenant + ": version " + info.version + " is live.");
      await refresh();
    } catch (e) {
      showError("Rollback failed: " + e.message);
      button.disabled = false;
    }
  }

  async function renderShadow(tenant, entry) {
    const box = $("shadow-body");
    if (!entry || !entry.shadow) {
      shown.delete("shadow");
      replace(box, el("p", { class: "muted" }, "No shadow module runs for " + tenant + "."));
      return;
    }
    let s;
    try {
      s = await api("GET", tenantPath(tenant) + "/shadow");
    } catch (e) {
      shown.delete("shadow");
      replace(box, el("p", { class: "error" }, "Cannot read the shadow report: " + e.message));
      return;
    }
    if (!changed("shadow", s)) return;
    const r = s.report;
    const differences = r.differences.map((d) =>
      el(
        "li",
        {},
        el("button", { type: "button", class: "link", onclick: () => openTimeline(tenant, d.event_id) }, d.event_id),
        " ",
        fold("live and shadow plans", { live: d.live_plan, shadow: d.shadow_plan }),
      ),
    );
    const failures = r.failures.map((f) => el("li", {}, el("code", {}, f.event_id), ": " + f.error));
    replace(
      box,
      el("p", {}, "Shadow ", el("code", { title: s.shadow.digest }, short(s.shadow.digest)), " from " + s.shadow.source + " since " + when(s.shadow.since)),
      el(
        "table",
        {},
        el(
          "thead",
          {},
          el("tr", {}, ["Decided", "Matched", "Differed", "Errors", "Skipped"].map((h) => el("th", { scope: "col", class: "num" }, h))),
        ),
        el("tbody", {}, el("tr", {}, [r.decided, r.matched, r.differed, r.errors, r.skipped].map((n) => el("td", { class: "num" }, n)))),
      ),
      differences.length ? [el("h4", {}, "Latest differences"), el("ul", {}, differences)] : null,
      failures.length ? [el("h4", {}, "Latest failures"), el("ul", {}, failures)] : null,
    );
  }

  function status(record) {
    if (!record) return "";
    return record.target ? record.status + " (" + record.target + ")" : record.status;
  }

  async function renderAgents(tenant, entry) {
    const box = $("agents-body");
    if (!entry || !entry.status_sync) {
      replace(box, el("p", { class: "muted" }, "Status sync is not configured for " + tenant + "."));
      return;
    }
    let a;
    try {
      a = await api("GET", "/v1/tenants/" + encodeURIComponent(tenant) + "/status-sync/agents");
    } catch (e) {
      replace(box, el("p", { class: "error" }, "Cannot read the agents: " + e.message));
      return;
    }
    const rows = a.agents.map((agent) => {
      const d = agent.last_decision;
      return el(
        "tr",
        {},
        el("th", { scope: "row" }, agent.agent_email),
        el("td", {}, status(agent.last_applied)),
        el("td", {}, status(agent.pending)),
        el("td", {}, d ? d.decision + ": " + d.status + (d.target_status ? " → " + d.target_status : "") : ""),
        el("td", { class: agent.last_error ? "reason bad" : "reason" }, agent.last_error || ""),
        el("td", { class: "num" }, agent.active_instances),
        el("td", {}, when(agent.updated_at)),
      );
    });
    replace(
      box,
      el(
        "table",
        {},
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["Agent", "Last applied", "Deferred", "Latest decision", "Latest error", "Instances", "Updated"].map((h) =>
              el("th", { scope: "col" }, h),
            ),
          ),
        ),
        el("tbody", {}, rows.length ? rows : emptyRow(7, "No agent has reported yet.")),
      ),
    );
  }

  // -------------------------------------------------------------- start

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = $("token").value.trim();
      if (token) signIn(token);
    });
    $("sign-out").addEventListener("click", () => signOut("Signed out."));
    $("tenant").addEventListener("change", (ev) => {
      selectedTenant = ev.target.value;
      sessionStorage.setItem("switchboard.tenant", selectedTenant);
      if (overview) renderTenantDetails();
    });
    $("timeline-close").addEventListener("click", () => {
      openEvent = null;
      $("timeline").hidden = true;
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && sessionStorage.getItem(TOKEN_KEY)) refresh();
    });
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) signIn(token);
    else signOut("");
  });
})();

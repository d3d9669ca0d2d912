/* Calls to the /v1 API from the browser: the bearer token (sessionStorage only, never
   sent anywhere but this origin's Authorization header), problem+json errors, downloads
   through fetch -> Blob -> object URL -> <a download>, and the login form. */
"use strict";

(function (DG) {
  const STORE = "docgate.token";
  const t = (key, vars) => DG.i18n.t(key, vars);

  function token() {
    try {
      return window.sessionStorage.getItem(STORE);
    } catch (e) {
      return null;
    }
  }

  function setToken(value) {
    if (value) window.sessionStorage.setItem(STORE, value);
    else window.sessionStorage.removeItem(STORE);
  }

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail || code || String(status));
      this.status = status;
      this.code = code;
      this.detail = detail;
    }
  }

  /* fetch() with the token, an Error for network failures and non-2xx answers. */
  async function request(path, options) {
    const opts = Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {});
    const headers = new Headers(opts.headers || {});
    const bearer = token();
    if (bearer && opts.auth !== false) headers.set("Authorization", "Bearer " + bearer);
    opts.headers = headers;
    let response;
    try {
      response = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, "network", t("error_network"));
    }
    if (!response.ok) {
      let code = "http_" + response.status;
      let detail = "";
      try {
        const problem = await response.json();
        code = problem.code || code;
        detail = problem.detail || "";
      } catch (e) {
        /* not problem+json */
      }
      throw new ApiError(response.status, code, detail);
    }
    return response;
  }

  async function json(path, options) {
    return (await request(path, options)).json();
  }

  /* The text to show for an error, in the page's language. */
  function describe(error) {
    if (!(error instanceof ApiError)) return t("error_network");
    if (error.status === 0) return t("error_network");
    if (error.status === 401) return t("error_unauthorized");
    if (error.status === 403) return t("error_forbidden");
    const known = DG.i18n.t("problem_" + error.code);
    if (known !== "problem_" + error.code) return known;
    return `${t("error_http")} ${error.status}${error.detail ? ": " + error.detail : ""}`;
  }

  function filename(response, fallback) {
    const header = response.headers.get("Content-Disposition") || "";
    const match = /filename="?([^";]+)"?/i.exec(header);
    return match ? match[1] : fallback;
  }

  /* Download what `path` answers (with the token) under the server's file name. */
  async function download(path, fallbackName) {
    const response = await request(path);
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = filename(response, fallbackName);
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 30000);
    return link.download;
  }

  /* Open a PDF fetched with the token in a new tab (a blob: URL, so the token never
     appears in a URL). The tab is opened first, while the click still counts as one. */
  async function openPdf(path) {
    const tab = window.open("", "_blank");
    try {
      const blob = await (await request(path)).blob();
      const url = URL.createObjectURL(new Blob([blob], { type: "application/pdf" }));
      if (tab) {
        tab.opener = null;
        tab.location.href = url;
      } else {
        window.location.assign(url);
      }
      window.setTimeout(() => URL.revokeObjectURL(url), 120000);
    } catch (e) {
      if (tab) tab.close();
      throw e;
    }
  }

  /* The login form of a page: #login-box holding #login-form and #token, #session, #logout, #login-status.
     onLogin(agencies) runs once the token is accepted (GET /v1/agencies checks it). */
  function wireLogin(onLogin, onLogout) {
    const form = document.getElementById("login-form");
    const box = document.getElementById("login-box");
    const input = document.getElementById("token");
    const session = document.getElementById("session");
    const status = document.getElementById("login-status");

    function show(loggedIn) {
      box.hidden = loggedIn;
      session.hidden = !loggedIn;
    }

    async function check() {
      DG.i18n.say(status, () => t("working"));
      try {
        const agencies = await json("/v1/agencies");
        DG.i18n.say(status, null);
        show(true);
        onLogin(agencies);
      } catch (e) {
        setToken(null);
        show(false);
        DG.i18n.say(status, () => (e.status === 401 ? t("login_failed") : describe(e)), true);
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      setToken(value);
      input.value = "";
      check();
    });
    document.getElementById("logout").addEventListener("click", () => {
      setToken(null);
      show(false);
      onLogout();
      input.focus();
    });
    if (token()) check();
    else show(false);
  }

  DG.api = { request, json, download, openPdf, describe, wireLogin, token, ApiError };
})(window.DG);

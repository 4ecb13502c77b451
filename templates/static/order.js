// The Order SSL Cert popup without page reloads where it matters: the approver addresses follow
// the domain as it is typed, contacts fill the fields, and rows show only when they apply.
// Every page works without this file; it only replaces the buttons marked data-nojs.
(function () {
  "use strict";

  var DEBOUNCE_MS = 350;

  function hideNoJsControls() {
    document.querySelectorAll("[data-nojs]").forEach(function (element) {
      element.hidden = true;
    });
  }

  function showErrors(fieldId, messages) {
    var list = document.getElementById(fieldId + "-errors");
    if (!list) return;
    list.replaceChildren();
    messages.forEach(function (message) {
      var item = document.createElement("li");
      item.textContent = String(message);
      list.appendChild(item);
    });
  }

  // --- step 1: the live approver lookups --------------------------------------------------

  // One approver dropdown that follows a name: the domain's, or an additional name's.
  // name() is the name to look up; a mistake in it is shown in nameField's error list.
  // The orange spinner beside a field while a lookup runs, with words for screen readers:
  // the approver lookup and the pre-flight checks show the same one.
  function showBusy(status, words) {
    var spinner = document.createElement("span");
    var text = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    text.className = "visually-hidden";
    text.textContent = words;
    status.replaceChildren(spinner, text);
    status.dataset.state = "busy";
  }

  function ApproverLookup(form, select, name, nameField) {
    this.select = select;
    this.status = select.closest(".field").querySelector(".lookup-status");
    this.name = name;
    this.nameField = nameField;
    this.url = form.dataset.dcvUrl;
    this.account = form.querySelector("[name=provider_account_id]");
    this.timer = null;
    this.controller = null;
    this.wanted = this.select.value;
  }

  ApproverLookup.prototype.schedule = function () {
    var self = this;
    this.cancel();
    showErrors(this.nameField, []);
    if (!this.name().trim()) {
      this.fill([], "Enter the domain name first");
      this.idle();
      return;
    }
    this.busy();
    this.timer = window.setTimeout(function () {
      self.fetch();
    }, DEBOUNCE_MS);
  };

  ApproverLookup.prototype.cancel = function () {
    window.clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
    this.controller = null;
  };

  ApproverLookup.prototype.fetch = function () {
    var self = this;
    var controller = new AbortController();
    var query = new URLSearchParams({ domain: this.name() });
    if (this.account) query.set("provider_account_id", this.account.value);
    this.controller = controller;
    this.select.setAttribute("aria-busy", "true");
    window
      .fetch(this.url + "?" + query.toString(), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: controller.signal,
      })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (answer) {
        if (controller.signal.aborted) return;
        self.controller = null;
        if (answer.ok) self.answered(answer.body);
        else self.failed(answer.body.error, answer.body.field);
      })
      .catch(function (error) {
        if (controller.signal.aborted || error.name === "AbortError") return;
        self.controller = null;
        self.failed("The panel could not be reached; check the connection.", "");
      });
  };

  ApproverLookup.prototype.busy = function () {
    this.wanted = this.select.value || this.wanted;
    this.fill([], "Looking up the approval addresses…");
    showBusy(this.status, "Looking up the approval addresses…");
  };

  ApproverLookup.prototype.idle = function () {
    this.status.replaceChildren();
    this.status.dataset.state = "idle";
    this.select.removeAttribute("aria-busy");
  };

  ApproverLookup.prototype.answered = function (body) {
    this.idle();
    this.fill(body.emails || [], "No address available");
    showErrors(this.select.id, []);
  };

  ApproverLookup.prototype.failed = function (message, field) {
    var self = this;
    var text = typeof message === "string" && message ? message : "The lookup failed.";
    this.idle();
    this.fill([], "No address available");
    if (field === "domain") {
      showErrors(this.nameField, [text]);
      return;
    }
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "secondary retry";
    retry.textContent = "Retry";
    retry.addEventListener("click", function () {
      self.schedule();
    });
    showErrors(this.select.id, [text]);
    this.status.replaceChildren(retry);
    this.status.dataset.state = "error";
  };

  ApproverLookup.prototype.fill = function (emails, placeholder) {
    var wanted = this.wanted;
    var options = emails.map(function (email) {
      return new Option(String(email.label), String(email.value));
    });
    if (!options.length) options.push(new Option(placeholder, ""));
    this.select.replaceChildren.apply(this.select, options);
    if (emails.some(function (email) { return email.value === wanted; })) {
      this.select.value = wanted;
    }
    // the pre-flight checks follow the chosen approver, however it was chosen
    this.select.dispatchEvent(new Event("change", { bubbles: true }));
  };

  function followDomain(form) {
    var domain = form.querySelector("#domain");
    var lookup = new ApproverLookup(
      form,
      form.querySelector("#approver_email"),
      function () { return domain.value; },
      "domain"
    );
    domain.addEventListener("input", function () {
      lookup.schedule();
    });
  }

  // --- step 1: an approver per additional name ---------------------------------------------

  // The rows follow the names typed: a new name gets a row copied from the page's template
  // (__i__: its number, __name__: the name) and its own lookup; a row keeps its choice while
  // its name stays; the panel caps the names at what the product covers.
  function SanApprovers(form) {
    this.form = form;
    this.names = form.querySelector("#sans");
    this.group = form.querySelector("#san_approvers-row");
    this.rows = form.querySelector("#san_approvers-rows");
    this.template = document.getElementById("san-approver-template");
    this.next = this.rows.children.length;
    this.timer = null;
  }

  SanApprovers.prototype.start = function () {
    var self = this;
    this.names.addEventListener("input", function () {
      window.clearTimeout(self.timer);
      self.timer = window.setTimeout(function () {
        self.update();
      }, DEBOUNCE_MS);
    });
  };

  SanApprovers.prototype.typed = function () {
    var seen = {};
    var limit = Number(this.group.dataset.maxNames) || 0;
    return this.names.value
      .split(/[\s,;]+/)
      .filter(function (name) {
        if (!name || seen[name]) return false;
        seen[name] = true;
        return true;
      })
      .slice(0, limit);
  };

  SanApprovers.prototype.update = function () {
    var self = this;
    var current = {};
    Array.prototype.forEach.call(this.rows.children, function (row) {
      current[row.querySelector("input[type=hidden]").value] = row;
    });
    var rows = this.typed().map(function (name) {
      return current[name] || self.add(name);
    });
    this.rows.replaceChildren.apply(this.rows, rows);
    showErrors("san_approvers", []);
  };

  SanApprovers.prototype.add = function (name) {
    var holder = document.createElement("template");
    holder.innerHTML = this.template.innerHTML.replace(/__i__/g, String(this.next++));
    var row = holder.content.firstElementChild;
    var label = row.querySelector("label");
    var select = row.querySelector("select");
    label.textContent = label.textContent.replace("__name__", name);
    row.querySelector("input[type=hidden]").value = name;
    new ApproverLookup(this.form, select, function () { return name; }, select.id).schedule();
    return row;
  };

  // --- step 1: the pre-flight checks ----------------------------------------------------------

  // What DNS says about the form as it stands (CAA, the approver's mailbox, HTTP or DNS
  // validation), each finding listed beside its field; the same orange spinner as the approver
  // lookup shows beside the domain meanwhile. A newer question cancels the older one; a check
  // that fails says so and blocks nothing (the panel asks CAA again at submit).
  function Preflight(form) {
    this.form = form;
    this.url = form.dataset.preflightUrl;
    this.domain = form.querySelector("#domain");
    this.status = document.getElementById("domain-status");
    this.timer = null;
    this.controller = null;
  }

  Preflight.prototype.start = function () {
    var self = this;
    var later = function () { self.schedule(); };
    this.domain.addEventListener("input", later);
    ["#sans", "#dcv_method", "#approver_email", "#san_approvers-rows"].forEach(function (selector) {
      var element = self.form.querySelector(selector);
      if (element) element.addEventListener(selector === "#sans" ? "input" : "change", later);
    });
    if (this.domain.value.trim()) this.schedule();
  };

  Preflight.prototype.schedule = function () {
    var self = this;
    window.clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
    this.controller = null;
    if (!this.domain.value.trim()) {
      this.show([]);
      this.idle();
      return;
    }
    this.busy();
    this.timer = window.setTimeout(function () {
      self.fetch();
    }, DEBOUNCE_MS);
  };

  Preflight.prototype.fetch = function () {
    var self = this;
    var controller = new AbortController();
    this.controller = controller;
    window
      .fetch(this.url, {
        method: "POST",
        body: new URLSearchParams(new FormData(this.form)),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: controller.signal,
      })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        if (controller.signal.aborted) return;
        self.controller = null;
        self.idle();
        self.show(body.findings || []);
      })
      .catch(function (error) {
        if (controller.signal.aborted || error.name === "AbortError") return;
        self.controller = null;
        self.idle();
        self.show([{ field: "domain", level: "warning", message: "Could not run the checks." }]);
      });
  };

  Preflight.prototype.busy = function () {
    showBusy(this.status, "Checking the domain's DNS…");
  };

  Preflight.prototype.idle = function () {
    this.status.replaceChildren();
    this.status.dataset.state = "idle";
  };

  // Each finding goes to its field's list (the domain's when the field is not on the page);
  // a message the page already shows as that field's error is not repeated.
  Preflight.prototype.show = function (findings) {
    var lists = this.form.querySelectorAll("ul.preflight");
    lists.forEach(function (list) { list.replaceChildren(); });
    findings.forEach(function (finding) {
      var field = String(finding.field);
      var list = document.getElementById(field + "-preflight") ||
        document.getElementById("domain-preflight");
      var shown = document.getElementById(field + "-errors");
      var message = String(finding.message);
      if (shown && shown.textContent.indexOf(message) !== -1) return;
      var item = document.createElement("li");
      item.className = "preflight-" + String(finding.level);
      item.textContent = message;
      list.appendChild(item);
    });
  };

  // --- step 1: rows that depend on other choices ---------------------------------------------

  function redrawOnChange(form, selector) {
    var select = form.querySelector(selector);
    var button = select && select.closest(".field").querySelector("button[value=refresh]");
    if (!button) return;
    select.addEventListener("change", function () {
      form.requestSubmit(button);
    });
  }

  function toggleApproverRows(form) {
    var method = form.querySelector("select#dcv_method");
    var rows = form.querySelectorAll("#approver_email-row, #san_approvers-row");
    if (!method) return;
    var update = function () {
      rows.forEach(function (row) {
        row.hidden = method.value !== "email";
      });
    };
    method.addEventListener("change", update);
    update();
  }

  function startStep1(form) {
    redrawOnChange(form, "#provider_account_id");
    redrawOnChange(form, "#product_id");
    toggleApproverRows(form);
    if (form.querySelector("#approver_email")) followDomain(form);
    if (form.querySelector("#san_approvers-rows")) new SanApprovers(form).start();
    new Preflight(form).start();
  }

  // --- step 2: contacts and the key ------------------------------------------------------------

  function startStep2(form) {
    var data = document.getElementById("contacts-data");
    var contacts = data ? JSON.parse(data.textContent) : {};
    var choice = form.querySelector("#contact_id");
    choice.addEventListener("change", function () {
      var contact = contacts[choice.value] || {};
      form.querySelectorAll("[name^=contact_]:not(#contact_id)").forEach(function (input) {
        input.value = contact[input.name] || "";
      });
    });
    var sources = form.querySelectorAll("input[name=key_source]");
    var update = function () {
      var checked = form.querySelector("input[name=key_source]:checked");
      var pasted = Boolean(checked) && checked.value === "csr";
      form.querySelector("#key_type-row").hidden = pasted;
      form.querySelector("#csr-row").hidden = !pasted;
    };
    sources.forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var step1 = document.getElementById("order-form");
    var step2 = document.getElementById("contact-form");
    hideNoJsControls();
    if (step1) startStep1(step1);
    if (step2) startStep2(step2);
  });
})();

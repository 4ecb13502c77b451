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

  // --- step 1: the live approver lookup ----------------------------------------------------

  function ApproverLookup(form) {
    this.form = form;
    this.domain = form.querySelector("#domain");
    this.select = form.querySelector("#approver_email");
    this.status = form.querySelector("#approver_email-status");
    this.url = form.dataset.dcvUrl;
    this.timer = null;
    this.controller = null;
    this.wanted = this.select.value;
  }

  ApproverLookup.prototype.start = function () {
    var self = this;
    this.domain.addEventListener("input", function () {
      self.schedule();
    });
  };

  ApproverLookup.prototype.schedule = function () {
    var self = this;
    this.cancel();
    showErrors("domain", []);
    if (!this.domain.value.trim()) {
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
    var account = this.form.querySelector("[name=provider_account_id]");
    var query = new URLSearchParams({ domain: this.domain.value });
    if (account) query.set("provider_account_id", account.value);
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
    var spinner = document.createElement("span");
    var words = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    words.className = "visually-hidden";
    words.textContent = "Looking up the approval addresses…";
    this.status.replaceChildren(spinner, words);
    this.status.dataset.state = "busy";
  };

  ApproverLookup.prototype.idle = function () {
    this.status.replaceChildren();
    this.status.dataset.state = "idle";
    this.select.removeAttribute("aria-busy");
  };

  ApproverLookup.prototype.answered = function (body) {
    this.idle();
    this.fill(body.emails || [], "No address available");
    showErrors("approver_email", []);
  };

  ApproverLookup.prototype.failed = function (message, field) {
    var self = this;
    var text = typeof message === "string" && message ? message : "The lookup failed.";
    this.idle();
    this.fill([], "No address available");
    if (field === "domain") {
      showErrors("domain", [text]);
      return;
    }
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "secondary retry";
    retry.textContent = "Retry";
    retry.addEventListener("click", function () {
      self.schedule();
    });
    showErrors("approver_email", [text]);
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

  function toggleApproverRow(form) {
    var method = form.querySelector("select#dcv_method");
    var row = form.querySelector("#approver_email-row");
    if (!method || !row) return;
    var update = function () {
      row.hidden = method.value !== "email";
    };
    method.addEventListener("change", update);
    update();
  }

  function startStep1(form) {
    redrawOnChange(form, "#provider_account_id");
    redrawOnChange(form, "#product_id");
    toggleApproverRow(form);
    if (form.querySelector("#approver_email")) new ApproverLookup(form).start();
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

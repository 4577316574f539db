/* Purchase Credits and the payment page, with Stripe.js (loaded before this file).
 * Purchase: a card typed in is saved first (SetupIntent + confirmCardSetup), then the form
 * is submitted and the server creates and confirms the PaymentIntent with the saved card.
 * Payment page: 3-D Secure is finished with confirmCardPayment; while the payment is open
 * the page asks the server for its status and reloads when it changes. */
(function () {
  "use strict";

  function csrfToken(form) {
    var input = (form || document).querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, token, fields) {
    var body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token, "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) { throw new Error(data.error || "The card could not be saved."); }
        return data;
      });
    });
  }

  // Micro-dollars as BigInt: no float touches money, even in the preview.
  function micros(text) {
    var match = /^(-?)(\d+)(?:\.(\d{0,6}))?$/.exec(String(text).trim());
    if (!match) { return null; }
    var value = BigInt(match[2]) * 1000000n + BigInt((match[3] || "").padEnd(6, "0") || "0");
    return match[1] ? -value : value;
  }

  function formatMicros(value) {
    var negative = value < 0n;
    if (negative) { value = -value; }
    var whole = (value / 1000000n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var fraction = (value % 1000000n).toString().padStart(6, "0");
    return (negative ? "-$" : "$") + whole + "." + fraction;
  }

  // A card element that knows whether its fields are filled in: real Stripe.js says so in
  // its change events; localstripe's development stand-in only keeps `value`.
  function cardField(stripe, mount) {
    var card = stripe.elements().create("card");
    var state = { card: card, complete: false };
    card.on("change", function (event) {
      if (event && typeof event.complete === "boolean") {
        state.complete = event.complete;
        return;
      }
      var value = card.value && card.value.card;
      state.complete = Boolean(value && value.number && value.exp_month &&
        value.exp_year && value.exp_year !== "20" && value.cvc);
    });
    card.mount(mount);
    return state;
  }

  // localstripe prefixes the typed year with "20": a 4-digit year (12/2030) becomes
  // "202030". Real Stripe.js has no `value` and is left alone.
  function localYearFix(card) {
    var value = card.value && card.value.card;
    if (value && /^20\d{4}$/.test(value.exp_year)) { value.exp_year = value.exp_year.slice(2); }
  }

  var EMPTY_CARD = "Enter the card's number, expiry date and security code.";

  // SetupIntent → confirmCardSetup → keep it on the license; resolves to {card, id}.
  function cardSave(form, stripe, field, fields) {
    var token = csrfToken(form);
    if (!field.complete) { return Promise.reject(new Error(EMPTY_CARD)); }
    localYearFix(field.card);
    return post(form.dataset.setupUrl, token, fields)
      .then(function (setup) {
        return stripe.confirmCardSetup(setup.client_secret, { payment_method: { card: field.card } });
      })
      .then(function (result) {
        if (!result || result.error) {
          throw new Error((result && result.error && result.error.message) || "Your card was declined.");
        }
        return post(form.dataset.saveUrl, token, { setup_intent: result.setupIntent.id });
      });
  }

  function addCardPage(form) {
    var errorBox = form.querySelector("[data-payment-error]");
    var button = form.querySelector("[data-add-card-button]");
    if (!window.Stripe) { return; }
    var stripe = window.Stripe(form.dataset.stripeKey);
    var field = cardField(stripe, form.querySelector("[data-card-element]"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      errorBox.textContent = "";
      button.disabled = true;
      cardSave(form, stripe, field)
        .then(function () { window.location.reload(); })
        .catch(function (error) {
          errorBox.textContent = error && error.message ? error.message : String(error);
          button.disabled = false;
        });
    });
  }

  function purchasePage(form) {
    var errorBox = form.querySelector("[data-payment-error]");
    var payButton = form.querySelector("[data-pay-button]");
    var after = form.querySelector("[data-balance-after]");
    var custom = form.querySelector("#id_custom_amount");
    var balance = micros(form.dataset.balance);
    var cardMount = form.querySelector("[data-card-element]");
    var newCardBox = form.querySelector("[data-new-card]");
    var stripe = null;
    var field = null;
    if (cardMount && window.Stripe) {
      stripe = window.Stripe(form.dataset.stripeKey);
      field = cardField(stripe, cardMount);
    }

    function cardChoice() {
      return form.querySelector("input[name=card]:checked") ||
        form.querySelector("input[name=card][type=hidden]");
    }

    function showCardBox() {
      var choice = cardChoice();
      if (newCardBox) { newCardBox.hidden = !(choice && choice.value === "new"); }
    }
    function chosenAmount() {
      var checked = form.querySelector("input[name=preset]:checked");
      if (!checked) { return null; }
      var text = checked.value === "custom" ? custom.value.replace(/[$,\s]/g, "") : checked.value;
      if (!/^\d+(\.\d{1,2})?$/.test(text)) { return null; }
      return micros(text);
    }

    function update() {
      var amount = chosenAmount();
      if (amount === null || balance === null) {
        after.textContent = "—";
        payButton.textContent = "Pay";
        return;
      }
      after.textContent = formatMicros(balance + amount);
      payButton.textContent = "Pay " + formatMicros(amount).replace(/(\.\d{2})\d{4}$/, "$1");
    }

    form.addEventListener("change", function () { update(); showCardBox(); });
    showCardBox();
    if (custom) {
      custom.addEventListener("input", function () {
        var other = form.querySelector("input[name=preset][value=custom]");
        if (other && custom.value) { other.checked = true; }
        update();
      });
    }
    update();

    form.addEventListener("submit", function (event) {
      var choice = cardChoice();
      // A saved card, or an amount the server will refuse: nothing to save first (a
      // refused amount must not leave a card behind).
      if (!field || !choice || choice.value !== "new" || chosenAmount() === null) { return; }
      event.preventDefault();
      errorBox.textContent = "";
      payButton.disabled = true;
      var fields = {};
      new FormData(form).forEach(function (value, key) { fields[key] = value; });
      cardSave(form, stripe, field, fields)
        .then(function (saved) {
          choice.value = String(saved.id);
          form.submit();
        })
        .catch(function (error) {
          errorBox.textContent = (error && error.message ? error.message : String(error)) +
            " Nothing was charged.";
          payButton.disabled = false;
        });
    });
  }

  function paymentPage(box) {
    var status = box.dataset.paymentStatus;
    var url = box.dataset.statusUrl;
    var token = csrfToken(document);
    var errorBox = box.querySelector("[data-payment-error]");
    if (status === "requires_action" && window.Stripe && box.dataset.clientSecret) {
      var stripe = window.Stripe(box.dataset.stripeKey);
      stripe.confirmCardPayment(box.dataset.clientSecret).then(function (result) {
        if (result.error && errorBox) { errorBox.textContent = result.error.message || ""; }
        return fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token } });
      }).then(function () { window.location.reload(); });
      return;
    }
    if (status !== "created" && status !== "processing") { return; }
    var tries = 0;
    var timer = window.setInterval(function () {
      tries += 1;
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        if (data.status !== status || tries > 60) {
          window.clearInterval(timer);
          window.location.reload();
        }
      });
    }, 2000);
  }

  var addForm = document.querySelector("[data-add-card-form]");
  if (addForm) { addCardPage(addForm); }
  var form = document.querySelector("[data-purchase-form]");
  if (form) { purchasePage(form); }
  var box = document.querySelector("[data-payment-status]");
  if (box) { paymentPage(box); }
})();

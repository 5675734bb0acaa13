// Consign customer pages: the cart (kept in this browser's localStorage,
// one per shop, its prices and stock checked again with the server each
// time it is shown), the product page's variant picker (never more in the
// cart than can be bought), and checkout, which posts to the storefront
// API with an Idempotency-Key kept until the order is placed, so a double
// click or a retry never makes two orders. Stock is shown in the server's
// words ("In stock", "Only 3 left", "Sold out"). Local times are times.js.
(function () {
  "use strict";
  var shop = document.body.dataset.shop;
  var currency = document.body.dataset.currency || "USD";
  var cartKey = "consign_cart_" + shop;
  var checkoutKey = "consign_checkout_key_" + shop;

  function readCart() {
    try {
      var cart = JSON.parse(localStorage.getItem(cartKey) || "[]");
      return Array.isArray(cart) ? cart : [];
    } catch (e) {
      return [];
    }
  }
  function writeCart(cart) {
    localStorage.setItem(cartKey, JSON.stringify(cart));
    showCount();
  }
  function showCount() {
    var count = readCart().reduce(function (n, line) { return n + line.quantity; }, 0);
    var badge = document.getElementById("cart-count");
    if (badge) badge.textContent = String(count);
  }
  function money(minor) {
    var decimals = ["JPY", "KRW", "VND", "CLP", "ISK"].indexOf(currency) >= 0 ? 0 : 2;
    var value = minor / Math.pow(10, decimals);
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: currency }).format(value);
    } catch (e) {
      return value.toFixed(decimals) + " " + currency;
    }
  }
  function text(tag, content, className) {
    var node = document.createElement(tag);
    node.textContent = content;
    if (className) node.className = className;
    return node;
  }
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // Product page: price and stock of the chosen variant, add to cart.
  function setupProduct() {
    var form = document.getElementById("add-to-cart");
    if (!form) return;
    var picker = document.getElementById("variant");
    function chosen() { return picker.options[picker.selectedIndex]; }
    function refresh() {
      var option = chosen();
      if (!option) return;
      var live = document.querySelector('#availability [data-sku="' + CSS.escape(option.value) + '"]');
      var available = Number(live ? live.dataset.available : option.dataset.available);
      option.dataset.available = String(available);
      document.getElementById("price").textContent = option.dataset.priceText;
      var line = document.getElementById("stock-line");
      line.textContent = live ? live.dataset.stock : option.dataset.stock;
      line.className = available > 0 ? "stock-ok" : "stock-out";
      var quantity = document.getElementById("quantity");
      quantity.max = String(Math.max(1, Math.min(1000, available)));
    }
    picker.addEventListener("change", refresh);
    document.body.addEventListener("htmx:afterSettle", refresh);
    refresh();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var option = chosen();
      var available = Number(option.dataset.available);
      var said = document.getElementById("added");
      var cart = readCart();
      var line = cart.find(function (l) { return l.sku === option.value; });
      var inCart = line ? line.quantity : 0;
      var wanted = Math.max(1, Math.min(1000, parseInt(document.getElementById("quantity").value, 10) || 1));
      var quantity = Math.min(wanted, available - inCart);
      if (quantity <= 0) {
        said.textContent = available > 0 ? "Your cart already has all " + available + " there are." : "Sold out.";
        return;
      }
      if (line) {
        line.quantity += quantity;
      } else {
        cart.push({
          sku: option.value,
          title: form.dataset.product + " · " + option.dataset.title,
          price: Number(option.dataset.price),
          quantity: quantity
        });
      }
      writeCart(cart);
      said.textContent = quantity < wanted
        ? "Only " + available + " left: added " + quantity + " to your cart."
        : "Added " + quantity + " to your cart.";
    });
  }

  // Cart page and checkout summary.
  function drawCart(container, editable) {
    var cart = readCart();
    container.textContent = "";
    if (cart.length === 0) {
      container.appendChild(text("p", "Your cart is empty.", "muted"));
      var go = document.getElementById("to-checkout");
      if (go) go.hidden = true;
      return;
    }
    var table = document.createElement("table");
    var head = table.createTHead().insertRow();
    ["Item", "Qty", "Total", ""].forEach(function (title, index) {
      var th = text("th", title, index === 1 || index === 2 ? "num" : "");
      th.scope = "col";
      head.appendChild(th);
    });
    var body = table.createTBody();
    var total = 0;
    cart.forEach(function (line, index) {
      var row = body.insertRow();
      var item = text("td", line.title);
      if (line.note) item.appendChild(text("div", line.note, line.soldOut ? "stock-out" : "muted"));
      row.appendChild(item);
      var qty = document.createElement("td");
      qty.className = "num";
      if (editable) {
        var input = document.createElement("input");
        input.type = "number";
        input.min = "1";
        input.max = "1000";
        input.value = String(line.quantity);
        input.style.maxWidth = "6rem";
        input.setAttribute("aria-label", "Quantity of " + line.title);
        input.addEventListener("change", function () {
          var cart = readCart();
          var most = cart[index].available === undefined ? 1000 : Math.max(1, cart[index].available);
          cart[index].quantity = Math.max(1, Math.min(most, parseInt(input.value, 10) || 1));
          writeCart(cart);
          drawCart(container, editable);
        });
        qty.appendChild(input);
      } else {
        qty.textContent = String(line.quantity);
      }
      row.appendChild(qty);
      row.appendChild(text("td", line.soldOut ? "—" : money(line.price * line.quantity), "num"));
      var actions = document.createElement("td");
      if (editable) {
        var remove = text("button", "Remove", "secondary");
        remove.type = "button";
        remove.setAttribute("aria-label", "Remove " + line.title);
        remove.addEventListener("click", function () {
          var cart = readCart();
          cart.splice(index, 1);
          writeCart(cart);
          drawCart(container, editable);
        });
        actions.appendChild(remove);
      }
      row.appendChild(actions);
      if (!line.soldOut) total += line.price * line.quantity;
    });
    var foot = table.createTFoot().insertRow();
    var label = text("th", "Total", "num");
    label.colSpan = 2;
    foot.appendChild(label);
    foot.appendChild(text("td", money(total), "num"));
    foot.appendChild(document.createElement("td"));
    var wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.appendChild(table);
    container.appendChild(wrap);
  }

  // Asks the server for the cart's current titles, prices and stock, and
  // brings the cart up to date: a changed price is taken and said, a
  // quantity above what is left is lowered and said, a SKU no longer sold
  // is marked. Then `done` draws it again.
  function refreshCart(done) {
    var cart = readCart();
    if (cart.length === 0) return;
    var query = cart.map(function (l) { return "sku=" + encodeURIComponent(l.sku); }).join("&");
    fetch("/shop/" + encodeURIComponent(shop) + "/cart/lines?" + query, { headers: { accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (lines) {
        var now = {};
        lines.forEach(function (l) { now[l.sku] = l; });
        var cart = readCart();
        cart.forEach(function (line) {
          var current = now[line.sku.toUpperCase()];
          line.note = "";
          line.soldOut = false;
          if (!current || !current.on_sale || current.available <= 0) {
            line.soldOut = true;
            line.available = 0;
            line.note = current && current.on_sale ? "Sold out: remove it to check out." : "No longer sold: remove it to check out.";
            return;
          }
          line.title = current.title;
          line.available = current.available;
          if (current.price !== line.price) {
            line.note = "The price is now " + money(current.price) + " (it was " + money(line.price) + ").";
            line.price = current.price;
          }
          if (line.quantity > current.available) {
            line.quantity = current.available;
            line.note = (line.note ? line.note + " " : "") + current.stock + ": your quantity is now " + current.available + ".";
          } else if (!line.note && current.few_left) {
            line.note = current.stock + ".";
          }
        });
        writeCart(cart);
        done();
      })
      .catch(function () { /* the cart as kept; checkout still checks everything */ });
  }

  function setupCart() {
    var container = document.getElementById("cart");
    var summary = document.getElementById("summary");
    var draw = function () {
      if (container) drawCart(container, true);
      if (summary) drawCart(summary, false);
    };
    if (!container && !summary) return;
    draw();
    refreshCart(draw);
  }

  // Checkout: one Idempotency-Key per attempt to buy this cart, kept until
  // the order is placed; the button is disabled while the request runs.
  function setupCheckout() {
    var form = document.getElementById("checkout");
    if (!form) return;
    var button = document.getElementById("place-order");
    var errorBox = document.getElementById("checkout-error");
    var busy = false;
    function fail(message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
      errorBox.focus && errorBox.focus();
    }
    function value(name) { return (form.elements[name].value || "").trim(); }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) return;
      errorBox.hidden = true;
      var cart = readCart();
      if (cart.length === 0) return fail("Your cart is empty.");
      if (!form.checkValidity()) {
        form.reportValidity();
        return;
      }
      var key = sessionStorage.getItem(checkoutKey);
      if (!key) {
        key = newKey();
        sessionStorage.setItem(checkoutKey, key);
      }
      var provider = form.querySelector('input[name="payment_provider"]:checked');
      var body = {
        items: cart.map(function (l) { return { sku: l.sku, quantity: l.quantity }; }),
        customer: { name: value("name"), email: value("email"), phone: value("phone") || null },
        shipping_address: {
          line1: value("line1"), line2: value("line2") || null, city: value("city"),
          region: value("region") || null, postal_code: value("postal_code"),
          country: value("country").toUpperCase()
        },
        payment_provider: provider ? provider.value : "manual"
      };
      busy = true;
      button.disabled = true;
      button.textContent = "Placing your order…";
      var attempt = function (triesLeft) {
        fetch("/api/v1/storefront/" + encodeURIComponent(shop) + "/checkout", {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": key },
          body: JSON.stringify(body)
        }).then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (json) {
            if (response.status === 201) {
              localStorage.removeItem(cartKey);
              sessionStorage.removeItem(checkoutKey);
              window.location.assign("/shop/" + encodeURIComponent(shop) + "/orders/" + encodeURIComponent(json.order.id) +
                "/confirmation?token=" + encodeURIComponent(json.order_access_token));
              return;
            }
            if (json.code === "idempotency_request_in_progress" && triesLeft > 0) {
              setTimeout(function () { attempt(triesLeft - 1); }, 500);
              return;
            }
            if (json.code === "idempotency_key_reused") sessionStorage.removeItem(checkoutKey);
            var details = (json.errors || []).map(function (e) { return e.message; }).join("; ");
            throw new Error((json.detail || "The order could not be placed.") + (details ? " " + details : ""));
          });
        }).catch(function (error) {
          busy = false;
          button.disabled = false;
          button.textContent = "Place order";
          fail(error.message || "The order could not be placed. Check your connection and try again.");
        });
      };
      attempt(20);
    });
  }

  showCount();
  setupProduct();
  setupCart();
  setupCheckout();
})();

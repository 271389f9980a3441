//! Tag and log values that borrow strings of any lifetime, keys built at run time, and logs
//! mixing value types: all compile without conversions or `'static` strings.
#![deny(warnings)]

fn request(sku: &str, path: String) {
    let owned = String::from("owned");
    let key = format!("dyn.{sku}");
    let mut span = lstrace::span("checkout")
        .with_tag("sku", sku)
        .with_tag("path", &path)
        .with_tag(key.clone(), owned.as_str())
        .start();
    span.set_tag("path.len", path.len());
    span.set_tag(&key, &owned);
    span.log([("sku", sku)]);
    span.log([("sku", owned.as_str())]);
    span.log(lstrace::fields!(event = "priced", sku = sku, cents = 1250, "tax.included" = true));
    lstrace::set_tag("sku", sku);
    lstrace::set_tag("path", &path);
    lstrace::log([("path", path.as_str())]);
    lstrace::log(lstrace::fields!(path = &path, n = 3u8));
    let mut detached = lstrace::span(&path).start_detached();
    detached.set_tag("sku", sku);
    detached.log([("sku", sku)]);
    detached.log(lstrace::fields!(sku = sku, ratio = 0.5));
}

fn main() {
    let sku = String::from("A-1234");
    request(sku.as_str(), String::from("/cart"));
}

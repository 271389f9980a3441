//! What a user must not reach: the recorder's side of the tracer (`dropped` would inflate
//! its drop counts), the test feeder, and the alias of lstrace's own string type. (The error
//! for a private function points into lstrace's source, whose layout may change: those are
//! left out.)

fn main() {
    let tracer = lstrace::init(lstrace::Options::new("token")).unwrap();
    tracer.dropped(4);
    let _ = lstrace::Tracer::start(lstrace::Options::new("token"));
    let _: lstrace::Str = "key".into();
}

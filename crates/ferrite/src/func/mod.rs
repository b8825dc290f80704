//! Functions on the developer's machine: their `func.yaml`, the runtimes and
//! templates `ferrite init` writes, the build context of a folder, and the
//! image built and pushed through the Docker Engine API. The verbs that use
//! them are in `commands/` (init, build, run, deploy, bump).

pub mod context;
pub mod funcfile;
pub mod image;
pub mod progress;
pub mod runtime;

/// The format of a function whose func.yaml names none, as of a route.
pub const FORMAT_DEFAULT: &str = "default";

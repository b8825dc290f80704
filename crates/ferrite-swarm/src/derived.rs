//! The image a service route runs: the route's own image when it is a
//! service image already, else one derived from it (see
//! [`service_image`](crate::service_image)) and reused while its source is
//! the same image; and the removal of derived images no service runs.
//!
//! A derived image is named after its source, with a hash of what it is
//! made of (the source's id, the format, the watchdog image's id) in its
//! tag: two sources never share a name, a source rebuilt under the same
//! tag gets a new derived image, and an unchanged one finds its own again.
//! Its labels say who made it (`org.ferrite.owner`) and from which image
//! id, so the ones no longer used can be found and removed.

use std::collections::{HashMap, HashSet};

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};
use bollard::Docker;
use sha2::{Digest, Sha256};

use crate::error::is_not_found;
use crate::labels;
use crate::service_image::{self, ServiceImageError, ServiceImageSpec, LABEL_WATCHDOG};

/// The id of the image a derived image was built from.
pub const LABEL_SOURCE_ID: &str = "org.ferrite.watchdog.source-id";
/// Longest tag Docker accepts.
const MAX_TAG: usize = 128;
/// Most unused derived images removed in one pass: a pass follows a route
/// change, so the work stays small and the rest goes at the next one.
const MAX_REMOVED: usize = 20;

/// What a service route runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The image the service runs: the route's, or the derived one.
    pub image: String,
    /// The id the route's image had when this was prepared.
    pub source_id: String,
    /// Whether an image was built now (false: reused, or none needed).
    pub built: bool,
}

/// Where to take what a derived image needs.
#[derive(Debug, Clone)]
pub struct Derive<'a> {
    /// The route's image.
    pub source: &'a str,
    /// The route's format, `default` or `http`.
    pub format: &'a str,
    /// The image holding Ferrite's static binary.
    pub watchdog_image: &'a str,
    /// The installation that makes it (its images are its to remove).
    pub owner: &'a str,
}

/// The name of the image derived from `source` (whose id is `source_id`)
/// for `format` with the watchdog of image `watchdog_id`: the default name
/// ([`service_image::default_tag`]) with 12 hex digits of their hash added
/// to the tag (`ferrite/hello-service:latest-1a2b3c4d5e6f`).
pub fn derived_tag(source: &str, source_id: &str, format: &str, watchdog_id: &str) -> String {
    let mut digest = Sha256::new();
    for part in [source_id, format, watchdog_id] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    let hash: String = digest.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let base = service_image::default_tag(source);
    // default_tag always ends in `:TAG`, and TAG holds no `:`.
    let (repo, tag) = base.rsplit_once(':').unwrap_or((&base, "latest"));
    let room = MAX_TAG - hash.len() - 1;
    let tag = tag.get(..room.min(tag.len())).unwrap_or(tag);
    format!("{repo}:{tag}-{hash}")
}

/// The image a service route of `derive.source` runs, built when no derived
/// image of the same source id, format and watchdog exists yet. Nothing is
/// pulled: the source and the watchdog image must be on the engine.
pub async fn prepare(docker: &Docker, derive: &Derive<'_>) -> Result<Prepared, ServiceImageError> {
    let source = match docker.inspect_image(derive.source).await {
        Ok(inspect) => inspect,
        Err(e) if is_not_found(&e) => {
            return Err(ServiceImageError::SourceMissing(derive.source.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let source_id = source.id.unwrap_or_default();
    let is_service_image = source
        .config
        .and_then(|c| c.labels)
        .is_some_and(|l| l.contains_key(LABEL_WATCHDOG));
    if is_service_image {
        return Ok(Prepared {
            image: derive.source.to_string(),
            source_id,
            built: false,
        });
    }
    let watchdog_id = match docker.inspect_image(derive.watchdog_image).await {
        Ok(inspect) => inspect.id.unwrap_or_default(),
        Err(e) if is_not_found(&e) => {
            return Err(ServiceImageError::WatchdogMissing(
                derive.watchdog_image.to_string(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let tag = derived_tag(derive.source, &source_id, derive.format, &watchdog_id);
    match docker.inspect_image(&tag).await {
        Ok(found) => {
            let made_from = found
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(LABEL_SOURCE_ID));
            if made_from.as_deref() == Some(source_id.as_str()) {
                return Ok(Prepared {
                    image: tag,
                    source_id,
                    built: false,
                });
            }
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let spec = ServiceImageSpec {
        source: derive.source.to_string(),
        tag,
        format: derive.format.to_string(),
        watchdog_image: derive.watchdog_image.to_string(),
        labels: HashMap::from([
            (LABEL_SOURCE_ID.to_string(), source_id.clone()),
            (labels::OWNER.to_string(), derive.owner.to_string()),
        ]),
    };
    let built = service_image::build(docker, &spec).await?;
    Ok(Prepared {
        image: built.tag,
        source_id,
        built: true,
    })
}

/// Derived images found unused by [`remove_unused`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unused {
    pub removed: usize,
    /// Still there: used by a container (the task of a service being
    /// removed or updated), or beyond one pass's bound. Worth another pass.
    pub left: usize,
}

/// Remove the derived images `owner` made whose names (tags, or
/// `repo@digest` for one pulled by digest) are not in `keep`
/// (at most [`MAX_REMOVED`] tries per pass); one still used by a container
/// (an old task stopping) is left for a later pass.
pub async fn remove_unused(
    docker: &Docker,
    owner: &str,
    keep: &HashSet<String>,
) -> Result<Unused, ServiceImageError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{}={owner}", labels::OWNER),
            LABEL_SOURCE_ID.to_string(),
        ],
    )]);
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    let unused: Vec<_> = images
        .iter()
        .filter(|i| {
            !i.repo_tags
                .iter()
                .chain(&i.repo_digests)
                .any(|t| keep.contains(t))
        })
        .collect();
    let mut removed = 0;
    for image in unused.iter().take(MAX_REMOVED) {
        // By name, each of its names: one tagged under a registry too
        // (pushed for the other nodes) has two, and the engine removes an
        // image of several names by id only when forced, which would take
        // it from under a container still using it.
        let mut names: Vec<&str> = image
            .repo_tags
            .iter()
            .map(String::as_str)
            .filter(|t| *t != "<none>:<none>")
            .collect();
        if names.is_empty() {
            names.push(image.id.as_str());
        }
        let mut gone = true;
        for name in names {
            if let Err(e) = docker
                .remove_image(name, None::<RemoveImageOptions>, None)
                .await
            {
                tracing::debug!(image = %image.id, name, error = %e, "derived service image kept");
                gone = false;
                break;
            }
        }
        if gone {
            tracing::info!(image = %image.id, tags = ?image.repo_tags, "derived service image no service runs removed");
            removed += 1;
        }
    }
    Ok(Unused {
        removed,
        left: unused.len() - removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tags_differ_by_source_format_and_watchdog() {
        let tag = derived_tag("ferrite/hello", "sha256:a", "http", "sha256:w");
        assert!(tag.starts_with("ferrite/hello-service:latest-"), "{tag}");
        assert_eq!(tag.len(), "ferrite/hello-service:latest-".len() + 12);
        assert_eq!(
            tag,
            derived_tag("ferrite/hello", "sha256:a", "http", "sha256:w")
        );
        for other in [
            derived_tag("ferrite/hello", "sha256:b", "http", "sha256:w"),
            derived_tag("ferrite/hello", "sha256:a", "default", "sha256:w"),
            derived_tag("ferrite/hello", "sha256:a", "http", "sha256:v"),
        ] {
            assert_ne!(tag, other);
        }
        assert!(derived_tag("127.0.0.1:5000/x:v1", "i", "http", "w")
            .starts_with("127.0.0.1:5000/x-service:v1-"));
    }

    #[test]
    fn long_tags_are_cut_to_docker_s_limit() {
        let source = format!("x:{}", "t".repeat(128));
        let tag = derived_tag(&source, "i", "http", "w");
        let (_, tag_part) = tag.rsplit_once(':').unwrap();
        assert_eq!(tag_part.len(), MAX_TAG);
    }
}

//! Image previews for uploads, with the `image` crate (PNG, JPEG, GIF and WebP decoders
//! only), on a blocking thread.

use std::io::Cursor;

use async_trait::async_trait;
use chat_core::{Error, Result, Thumbnailer};
use image::{ImageError, ImageFormat, ImageReader, Limits};

/// Thumbnails that fit in `max_side` × `max_side` pixels, as PNG.
///
/// An image whose header declares more than `max_pixels` pixels is refused before it is
/// decoded: a few kilobytes of PNG can declare gigabytes of pixels (a decompression
/// bomb). Images that do not decode get no thumbnail (they are still stored: the bytes
/// were typed as an image by their header only).
#[derive(Debug, Clone)]
pub struct ImageThumbnails {
    /// Longest side of a thumbnail, in pixels.
    pub max_side: u32,
    /// Most pixels (width × height) an upload may declare.
    pub max_pixels: u64,
}

impl Default for ImageThumbnails {
    /// 320-pixel previews; at most 40 megapixels (a 7,700 × 5,200 photo).
    fn default() -> Self {
        Self {
            max_side: 320,
            max_pixels: 40_000_000,
        }
    }
}

#[async_trait]
impl Thumbnailer for ImageThumbnails {
    async fn thumbnail(&self, content_type: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let format = match content_type {
            "image/png" => ImageFormat::Png,
            "image/jpeg" => ImageFormat::Jpeg,
            "image/gif" => ImageFormat::Gif,
            "image/webp" => ImageFormat::WebP,
            _ => return Ok(None),
        };
        let this = self.clone();
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || this.make(format, &bytes))
            .await
            .map_err(Error::storage)?
    }
}

impl ImageThumbnails {
    fn make(&self, format: ImageFormat, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let reader = || {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
            // The decoder's own ceiling too, for what the header check cannot see.
            let mut limits = Limits::default();
            limits.max_alloc = Some(self.max_pixels.saturating_mul(4));
            reader.limits(limits);
            reader
        };
        let too_large = || {
            Error::validation(
                "file",
                format!("an image larger than {} pixels", self.max_pixels),
            )
        };
        let (width, height) = match reader().into_dimensions() {
            Ok(dimensions) => dimensions,
            // The decoder saw the header declare more than its limits allow.
            Err(ImageError::Limits(_)) => return Err(too_large()),
            Err(_) => return Ok(None),
        };
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(too_large());
        }
        let image = match reader().decode() {
            Ok(image) => image,
            Err(ImageError::Limits(_)) => return Err(too_large()),
            Err(_) => return Ok(None),
        };
        let mut png = Vec::new();
        image
            .thumbnail(self.max_side, self.max_side)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .map_err(Error::storage)?;
        Ok(Some(png))
    }
}

//! A minimal PNG writer (8-bit RGBA, uncompressed deflate blocks) for saving plots: PNG is a
//! simple container, and plot images are small, so no image crate is needed for this.

use std::io::Write;
use std::path::Path;

/// CRC-32 (IEEE, as PNG chunks use) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Adler-32 of `data` (the zlib checksum).
pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    // PNG chunks are at most 2^31 - 1 bytes; our images are far smaller (checked by the caller).
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Encodes an RGBA image (`rgba.len() == width * height * 4`) as PNG bytes.
pub fn encode_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, String> {
    let row_len = usize::try_from(width).map_err(|e| e.to_string())? * 4;
    let rows = usize::try_from(height).map_err(|e| e.to_string())?;
    if rgba.len() != row_len * rows {
        return Err(format!(
            "image data has {} bytes, expected {}",
            rgba.len(),
            row_len * rows
        ));
    }
    if rgba.len() > (1 << 30) {
        return Err("image too large".into());
    }
    // Scanlines with filter type 0 (none).
    let mut raw = Vec::with_capacity(rows * (row_len + 1));
    for row in rgba.chunks(row_len.max(1)).take(rows) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    // zlib stream of stored (uncompressed) deflate blocks of at most 65535 bytes.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    if blocks.is_empty() {
        z.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        // Blocks are at most 65535 bytes, so the length fits u16.
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // 8 bits per channel, colour type 6 (RGBA), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// Crops `image` to `rect` (in pixels) and writes it as a PNG file.
pub fn save_color_image(
    image: &egui::ColorImage,
    rect: egui::Rect,
    path: &Path,
) -> Result<(), String> {
    let [w, h] = image.size;
    let clamp = |v: f32, max: usize| {
        // Pixel coordinates: rounding to the nearest pixel and clamping into the image.
        (v.round().max(0.0) as usize).min(max)
    };
    let (x0, x1) = (clamp(rect.min.x, w), clamp(rect.max.x, w));
    let (y0, y1) = (clamp(rect.min.y, h), clamp(rect.max.y, h));
    if x1 <= x0 || y1 <= y0 {
        return Err("the plot is not on screen".into());
    }
    let mut rgba = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
    for y in y0..y1 {
        for x in x0..x1 {
            let c = image.pixels.get(y * w + x).copied().unwrap_or_default();
            rgba.extend_from_slice(&c.to_srgba_unmultiplied());
        }
    }
    let width = u32::try_from(x1 - x0).map_err(|e| e.to_string())?;
    let height = u32::try_from(y1 - y0).map_err(|e| e.to_string())?;
    let bytes = encode_rgba(width, height, &rgba)?;
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        // The standard check value of CRC-32/ISO-HDLC and Adler-32 of "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"123456789"), 0x091E_01DE);
        // Wikipedia's example: adler32("Wikipedia") = 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn png_has_signature_ihdr_and_iend() {
        let rgba: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let png = encode_rgba(2, 3, &rgba).expect("encode");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
        assert!(encode_rgba(2, 2, &rgba).is_err());
    }
}

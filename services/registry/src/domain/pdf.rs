//! A minimal PDF 1.4 writer for certificates: one A4 page, lines of text in the standard
//! Helvetica font (no embedding needed), and a QR code drawn as filled squares. Written by
//! hand (ISO 32000-1 §7.5: header, objects, cross-reference table, trailer), uncompressed, so
//! the text is searchable in the file itself.

use qrcode::{Color, EcLevel, QrCode};

/// A4 in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const FONT_SIZE: f32 = 11.0;
const LEADING: f32 = 15.0;
/// Side of one QR module, in points.
const MODULE: f32 = 3.0;

/// The PDF of a page with `lines` of text from the top and the QR code of `qr_payload` at
/// the bottom right. Characters outside printable ASCII are transliterated (`à` becomes
/// `a'`, as Italian typewriting does).
pub fn render(lines: &[String], qr_payload: &str) -> Vec<u8> {
    let mut content = String::new();
    content.push_str(&format!(
        "BT /F1 {FONT_SIZE} Tf {LEADING} TL {MARGIN} {} Td\n",
        PAGE_HEIGHT - MARGIN
    ));
    for line in lines {
        content.push('(');
        content.push_str(&escape(line));
        content.push_str(") Tj T*\n");
    }
    content.push_str("ET\n");
    content.push_str(&qr_squares(qr_payload));

    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
             /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
        ),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        table.push_str(&format!("{offset:010} 00000 n \n"));
    }
    table.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF",
        objects.len() + 1
    ));
    pdf.extend_from_slice(table.as_bytes());
    pdf
}

/// The QR code of `payload` as filled squares, bottom right with a quiet zone; nothing if the
/// payload is too long for a QR code (never for a verification URL).
fn qr_squares(payload: &str) -> String {
    let Ok(code) = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M) else {
        return String::new();
    };
    let width = code.width();
    let side = MODULE * width as f32;
    let left = PAGE_WIDTH - MARGIN - side;
    let bottom = MARGIN;
    let mut out = String::from("0 0 0 rg\n");
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color != Color::Dark {
            continue;
        }
        let (col, row) = (i % width, i / width);
        let x = left + MODULE * col as f32;
        // Rows go down the page; PDF's y goes up.
        let y = bottom + side - MODULE * (row + 1) as f32;
        out.push_str(&format!("{x} {y} {MODULE} {MODULE} re\n"));
    }
    out.push_str("f\n");
    out
}

/// A string for a PDF literal: `\`, `(` and `)` escaped; accented letters as the base letter
/// and an apostrophe; any other character outside printable ASCII as `?`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => match crate::domain::codice_fiscale::fold_letter(c) {
                Some(base) => {
                    out.push(if c.is_lowercase() {
                        base.to_ascii_lowercase()
                    } else {
                        base
                    });
                    out.push('\'');
                }
                None => out.push('?'),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_a_well_formed_pdf_with_its_text() {
        let pdf = render(
            &["Città (centro)".to_owned(), "ABCDEFGH2345".to_owned()],
            "https://unione.example/verifica/ABCDEFGH2345",
        );
        let text = String::from_utf8_lossy(&pdf);
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF"));
        assert!(text.contains("(Citta' \\(centro\\)) Tj"));
        assert!(text.contains("ABCDEFGH2345"));
        assert!(text.contains(" re\n"), "the QR code is drawn");
        // The cross-reference table points at each object.
        let xref: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        assert!(pdf[xref..].starts_with(b"xref\n"));
        let table = String::from_utf8_lossy(&pdf[xref..]).into_owned();
        for (n, line) in table.lines().skip(3).take(5).enumerate() {
            let offset: usize = line[..10].parse().expect("an offset");
            let header = format!("{} 0 obj\n", n + 1);
            assert!(
                pdf[offset..].starts_with(header.as_bytes()),
                "object {}",
                n + 1
            );
        }
    }
}

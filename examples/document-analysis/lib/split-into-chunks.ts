/**
 * Splits text into chunks of at most `maxChars` characters, cutting on paragraph boundaries where
 * it can and on sentence boundaries where a paragraph is too long (a sentence longer than
 * `maxChars` is cut on the last space before the limit).
 *
 * @example
 * splitIntoChunks("First paragraph.\n\nSecond one.", 1500); // ["First paragraph.\n\nSecond one."]
 */
export function splitIntoChunks(text: string, maxChars: number): string[] {
  const pieces = text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p !== "")
    .flatMap((paragraph) =>
      paragraph.length <= maxChars ? [paragraph] : splitParagraph(paragraph, maxChars),
    );
  // Greedily pack whole paragraphs (or sentences) into chunks up to the limit.
  const chunks: string[] = [];
  let current = "";
  for (const piece of pieces) {
    const joined = current === "" ? piece : `${current}\n\n${piece}`;
    if (joined.length <= maxChars) {
      current = joined;
    } else {
      if (current !== "") chunks.push(current);
      current = piece;
    }
  }
  if (current !== "") chunks.push(current);
  return chunks;
}

function splitParagraph(paragraph: string, maxChars: number): string[] {
  const sentences = paragraph.match(/[^.!?]+[.!?]+["')\]]*\s*|[^.!?]+$/g) ?? [paragraph];
  const parts: string[] = [];
  let current = "";
  for (const raw of sentences) {
    let sentence = raw.trim();
    while (sentence.length > maxChars) {
      const cut = sentence.lastIndexOf(" ", maxChars);
      const at = cut > 0 ? cut : maxChars;
      if (current !== "") {
        parts.push(current);
        current = "";
      }
      parts.push(sentence.slice(0, at).trim());
      sentence = sentence.slice(at).trim();
    }
    const joined = current === "" ? sentence : `${current} ${sentence}`;
    if (joined.length <= maxChars) {
      current = joined;
    } else {
      parts.push(current);
      current = sentence;
    }
  }
  if (current !== "") parts.push(current);
  return parts;
}

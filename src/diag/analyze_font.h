/*
 * analyze_font.h — a 5x7 bitmap font for labels in the analysis picture
 * (digits, letters drawn as capitals, a little punctuation). Each glyph is
 * 7 rows of 5 bits, most significant bit on the left.
 */
#ifndef XS_DIAG_ANALYZE_FONT_H
#define XS_DIAG_ANALYZE_FONT_H

#include <stdint.h>

/* Rows for character ch, or NULL if the font does not have it. */
const uint8_t *an_font_glyph(char ch);

#endif

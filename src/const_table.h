/* const_table.h: constant lookup tables written as f(0), f(1), ... for static
 * initialisers (the Morton spread, the codec's bit spreads). f must be a
 * constant expression of its argument. */
#ifndef STRATA_CONST_TABLE_H
#define STRATA_CONST_TABLE_H

#define CONST_TABLE4(f, v) f(v), f(v + 1), f(v + 2), f(v + 3)
#define CONST_TABLE16(f, v)                                                                        \
    CONST_TABLE4(f, v), CONST_TABLE4(f, v + 4), CONST_TABLE4(f, v + 8), CONST_TABLE4(f, v + 12)
#define CONST_TABLE64(f, v)                                                                        \
    CONST_TABLE16(f, v), CONST_TABLE16(f, v + 16), CONST_TABLE16(f, v + 32),                       \
        CONST_TABLE16(f, v + 48)
#define CONST_TABLE256(f, v)                                                                       \
    CONST_TABLE64(f, v), CONST_TABLE64(f, v + 64), CONST_TABLE64(f, v + 128),                      \
        CONST_TABLE64(f, v + 192)
#define CONST_TABLE1024(f, v)                                                                      \
    CONST_TABLE256(f, v), CONST_TABLE256(f, v + 256), CONST_TABLE256(f, v + 512),                  \
        CONST_TABLE256(f, v + 768)

#endif

/**
 * A small keyword taxonomy that turns UCI Online Retail descriptions (gift-ware such as
 * "WHITE HANGING HEART T-LIGHT HOLDER") into product categories for the replay.
 *
 * Rule: upper-case the description, split it into words at every character that is not a
 * letter or digit ("T-LIGHT" gives "T" and "LIGHT"), and take the first category, in table
 * order, that has one of the words as a keyword; otherwise `other`. Order matters: seasonal
 * beats product type ("CHRISTMAS LIGHTS" is christmas), and non-products (postage, manual
 * adjustments, bank charges) come next so they never count as interests.
 */

/** Category name, then its keywords (whole words, upper case). First match wins. */
export const TAXONOMY: ReadonlyArray<readonly [string, readonly string[]]> = [
  ["christmas", ["CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWMAN", "NATIVITY", "SNOWFLAKE"]],
  ["service", ["POSTAGE", "CARRIAGE", "DISCOUNT", "MANUAL", "CHARGES", "DOTCOM", "SAMPLES", "ADJUST", "FEE"]],
  ["bags", ["BAG", "BAGS", "SHOPPER", "TOTE", "RUCKSACK", "BACKPACK"]],
  [
    "lighting",
    ["LIGHT", "LIGHTS", "LANTERN", "CANDLE", "CANDLES", "LAMP", "TEALIGHT", "NIGHTLIGHT", "CHANDELIER"],
  ],
  [
    "kitchen",
    [
      "CAKE",
      "CAKES",
      "CAKESTAND",
      "LUNCH",
      "TEA",
      "TEACUP",
      "TEAPOT",
      "COFFEE",
      "MUG",
      "MUGS",
      "CUP",
      "CUPS",
      "SAUCER",
      "BOWL",
      "BOWLS",
      "PLATE",
      "PLATES",
      "CUTLERY",
      "JAR",
      "JARS",
      "JAM",
      "BAKING",
      "KITCHEN",
      "NAPKINS",
      "PANTRY",
      "SPOON",
      "SPOONS",
      "TRAY",
      "BEAKER",
      "JUG",
      "APRON",
      "CHOPSTICKS",
      "CASES",
      "PICNIC",
      "TUMBLER",
      "GLASSES",
      "EGG",
      "BREAD",
      "OVEN",
      "TOAST",
    ],
  ],
  [
    "stationery",
    [
      "CARD",
      "CARDS",
      "PAPER",
      "WRAP",
      "PENCIL",
      "PENCILS",
      "PEN",
      "PENS",
      "NOTEBOOK",
      "NOTEPAD",
      "STICKER",
      "STICKERS",
      "TAPE",
      "ENVELOPE",
      "ENVELOPES",
      "CALENDAR",
      "ALBUM",
      "BOOK",
      "DIARY",
      "ERASER",
      "RULER",
      "TISSUES",
      "RIBBON",
      "RIBBONS",
      "CRAYONS",
      "STATIONERY",
    ],
  ],
  [
    "toys_party",
    [
      "PARTY",
      "TOY",
      "TOYS",
      "GAME",
      "GAMES",
      "DOLLY",
      "DOLL",
      "SPACEBOY",
      "BALLOON",
      "BALLOONS",
      "CHILDRENS",
      "CHILDS",
      "KIDS",
      "ALPHABET",
      "PLAYHOUSE",
      "JIGSAW",
      "SKITTLES",
      "DOMINOES",
      "PUPPET",
      "BIRTHDAY",
      "BUNTING",
      "TEDDY",
      "SOLDIER",
      "SPINNING",
    ],
  ],
  [
    "garden",
    [
      "GARDEN",
      "BIRD",
      "BIRDHOUSE",
      "FLOWER",
      "FLOWERS",
      "PLANT",
      "PLANTER",
      "WATERING",
      "SEED",
      "HERB",
      "POTTING",
      "TRELLIS",
    ],
  ],
  [
    "fashion",
    [
      "NECKLACE",
      "NECKLACES",
      "BRACELET",
      "EARRINGS",
      "RING",
      "HAIR",
      "HAIRCLIP",
      "PURSE",
      "UMBRELLA",
      "SCARF",
      "JEWELLERY",
      "BROOCH",
      "GLOVES",
      "HAT",
      "SLIPPERS",
      "WALLET",
      "BEADS",
      "CHARM",
      "SUNGLASSES",
    ],
  ],
  [
    "home_decor",
    [
      "HEART",
      "HEARTS",
      "SIGN",
      "DECORATION",
      "DECORATIONS",
      "FRAME",
      "CLOCK",
      "DOORMAT",
      "CUSHION",
      "WALL",
      "HANGING",
      "ORNAMENT",
      "VASE",
      "MIRROR",
      "GARLAND",
      "WREATH",
      "PLAQUE",
      "DOORSTOP",
      "KNOB",
      "HOOK",
      "HOOKS",
      "HANGER",
      "CHAIR",
      "BOTTLE",
      "THROW",
      "QUILT",
      "BLANKET",
      "PHOTO",
      "DOOR",
    ],
  ],
  [
    "storage",
    [
      "BOX",
      "BOXES",
      "TIN",
      "TINS",
      "STORAGE",
      "BASKET",
      "CRATE",
      "HAMPER",
      "TRUNK",
      "DRAWER",
      "CASE",
      "HOLDER",
      "RACK",
    ],
  ],
];

/** The fallback category. */
export const OTHER_CATEGORY = "other";

/** Every category name the taxonomy can produce, in table order, `other` last. */
export const CATEGORIES: readonly string[] = [...TAXONOMY.map(([name]) => name), OTHER_CATEGORY];

const KEYWORD_CATEGORY = new Map<string, string>();
for (const [category, keywords] of [...TAXONOMY].reverse()) {
  for (const keyword of keywords) KEYWORD_CATEGORY.set(keyword, category);
}
const RANK = new Map(TAXONOMY.map(([name], i) => [name, i]));

/** The category of a product description (see the module comment). */
export function categorise(description: string): string {
  let best: string | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const word of description.toUpperCase().split(/[^A-Z0-9]+/)) {
    const category = KEYWORD_CATEGORY.get(word);
    if (category === undefined) continue;
    const rank = RANK.get(category) ?? Number.POSITIVE_INFINITY;
    if (rank < bestRank) {
      best = category;
      bestRank = rank;
    }
  }
  return best ?? OTHER_CATEGORY;
}

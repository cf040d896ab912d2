#!/usr/bin/env python3
"""derive.py -- rebuilds places.tsv from its sources (see README.md).

Inputs, all from Debian packages:
  iso-codes          /usr/share/iso-codes/json/iso_3166-1.json, iso_3166-2.json
                     /usr/share/locale/en/LC_MESSAGES/iso_3166-2.mo
  libgeonames0       the GeoNames city table compiled into libgeonames.so.0
                     (read through its public C API with ctypes)
and curated.tsv beside this script (hand-written aliases and the crosswalk
from GeoNames first-level division names to ISO 3166-2 codes).

Usage: LC_ALL=C python3 derive.py [--report] > places.tsv
"""
import ctypes
import difflib
import gettext
import json
import os
import re
import sys
import unicodedata
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ISO_DIR = '/usr/share/iso-codes/json'
ISO2_MO = '/usr/share/locale/en/LC_MESSAGES/iso_3166-2.mo'

# Which cities: every city of at least CITY_MIN people, and in these
# countries every city of at least CITY_MIN_LOCAL.
CITY_MIN = 100000
CITY_MIN_LOCAL = 50000
LOCAL = {'US', 'CA', 'GB', 'AU'}

# Countries whose ISO 3166-2 top level is made of many small
# municipalities; those are left out (their cities are still there).
MUNICIPAL_TYPES = {'Municipality', 'Local council', 'Rayon', 'District municipality',
                   'City municipality', 'Republican city'}
MUNICIPAL_COUNTRIES = {'SI', 'LV', 'MK', 'MT', 'AZ', 'LT'}

# Countries whose ISO 3166-2 top level groups the real first-level
# divisions (Indonesia's seven geographical units over its provinces):
# their second level is used.
SECOND_LEVEL = {'ID'}

# Words that only say what kind of division a name is; they are ignored
# when GeoNames division names are matched against ISO 3166-2 names.
GENERIC = set('''
state estado free sovereign of the de del la province provincia provinsi region
regiao municipality city oblast oblasti oblysy voblasc voblasts respublika republic
kraj kray krai sheng shi zizhiqu governorate muhafazat prefecture department
departamento departement county district autonomous okrug avtonomnyj avtonomnyy
avtonomnaja capital territory federal voivodeship voivodship emirate canton atoll
area ken do si teukbyeolsi gwangyeoksi teukbyeoljachido uygur uyghur zhuang
zhuangzu hui huizi sar national special metropolitan metropolitana comunidad
principado and hlavni mesto grad baladiyat lan
'''.split())


def norm(s):
    """Lower-case ASCII-ish key: accents stripped, punctuation to spaces."""
    s = unicodedata.normalize('NFKD', s.casefold())
    s = ''.join(c for c in s if not unicodedata.combining(c))
    for a, b in (('ı', 'i'), ('ł', 'l'), ('ø', 'o'), ('đ', 'd'), ('æ', 'ae'),
                 ('œ', 'oe'), ('þ', 'th'), ('ð', 'd')):
        s = s.replace(a, b)
    s = re.sub(r"['’ʻʼ`.]", '', s)
    return ' '.join(re.sub(r'[^\w]+', ' ', s).split())


def strip_generic(s):
    return ' '.join(w for w in norm(s).split() if w not in GENERIC)


def strip_affix(s):
    """norm(s) without generic words at its start and end ('State of
    Maine' -> 'maine', 'Ile-de-France Region' -> 'ile de france')."""
    w = norm(s).split()
    while w and w[0] in GENERIC:
        w.pop(0)
    while w and w[-1] in GENERIC:
        w.pop()
    return ' '.join(w)


def clean_iso_name(name):
    """'Wales [Cymru GB-CYM]' -> ('Wales', ['Cymru']); drops '(...)' and '*',
    and turns 'Madrid, Comunidad de' into 'Comunidad de Madrid'."""
    alts = []
    for m in re.finditer(r'\[([^\]]*)\]', name):
        alt = re.sub(r'\b[A-Z]{2}-[A-Z0-9]+\b', '', m.group(1)).strip()
        if alt and alt != alt.lower():
            alts.append(alt)
    base = re.sub(r'\[[^\]]*\]|\([^)]*\)|\*', '', name)
    base = ' '.join(base.split())
    if ',' in base:
        head, tail = [p.strip() for p in base.split(',', 1)]
        if len(tail.split()) <= 3 and not re.search(r'\b(y|and|et|i)\b', tail):
            alts.append(base)
            base = tail + ' ' + head
    return base, alts


def read_geonames():
    lib = ctypes.CDLL('libgeonames.so.0')
    lib.geonames_get_city.restype = ctypes.c_void_p
    lib.geonames_get_city.argtypes = [ctypes.c_int]
    get = {}
    for f in ('name', 'state', 'country', 'country_code'):
        fn = getattr(lib, 'geonames_city_get_' + f)
        fn.restype = ctypes.c_char_p
        fn.argtypes = [ctypes.c_void_p]
        get[f] = fn
    lib.geonames_city_get_population.restype = ctypes.c_uint
    lib.geonames_city_get_population.argtypes = [ctypes.c_void_p]
    lib.geonames_city_free.argtypes = [ctypes.c_void_p]
    rows = []
    for i in range(lib.geonames_get_n_cities()):
        c = lib.geonames_get_city(i)
        rows.append({f: get[f](c).decode('utf-8') for f in get})
        rows[-1]['population'] = lib.geonames_city_get_population(c)
        lib.geonames_city_free(c)
    return rows


def read_curated():
    cur = defaultdict(list)
    with open(os.path.join(HERE, 'curated.tsv'), encoding='utf-8') as f:
        for line in f:
            line = line.rstrip('\n')
            if not line or line.startswith('#'):
                continue
            cols = line.split('\t')
            cur[cols[0]].append(cols[1:])
    return cur


def split_aliases(s):
    return [a for a in s.split('|') if a] if s else []


def add_alias(lst, name, canonical):
    k = norm(name)
    if k and k != norm(canonical) and all(norm(a) != k for a in lst):
        lst.append(name)


def main():
    report = '--report' in sys.argv
    log = sys.stderr
    cur = read_curated()

    # Countries: ISO 3166-1, plus the few user-assigned codes GeoNames uses.
    iso1 = json.load(open(os.path.join(ISO_DIR, 'iso_3166-1.json'), encoding='utf-8'))['3166-1']
    countries = {}
    for c in iso1:
        name = c.get('common_name') or c['name']
        aliases = []
        for k in ('name', 'official_name'):
            if k in c:
                add_alias(aliases, c[k], name)
        countries[c['alpha_2']] = {'name': name, 'aliases': aliases}
    for cc, name, aliases in cur['country']:
        if cc not in countries:
            countries[cc] = {'name': name, 'aliases': []}
        elif name and name != countries[cc]['name']:
            old = countries[cc]['name']
            countries[cc]['name'] = name
            add_alias(countries[cc]['aliases'], old, name)
        for a in split_aliases(aliases):
            add_alias(countries[cc]['aliases'], a, countries[cc]['name'])

    # Regions: the top level of ISO 3166-2.
    en = gettext.GNUTranslations(open(ISO2_MO, 'rb'))
    iso2 = json.load(open(os.path.join(ISO_DIR, 'iso_3166-2.json'), encoding='utf-8'))['3166-2']
    country_keys = {}
    for cc, c in countries.items():
        for a in [c['name']] + c['aliases']:
            country_keys[norm(a)] = cc
    keep_same_name = {code for (code,) in cur['keep-region']}
    regions = {}          # (cc, code) -> region
    by_cc = defaultdict(list)
    for s in iso2:
        if s['code'][:2] in SECOND_LEVEL:
            if 'parent' not in s:
                continue
        elif 'parent' in s:
            continue
        cc, code = s['code'].split('-', 1)
        if cc in MUNICIPAL_COUNTRIES and s['type'] in MUNICIPAL_TYPES:
            continue
        base, alts = clean_iso_name(s['name'])
        # A subdivision that is also a country of its own (Puerto Rico,
        # Hong Kong, Aruba, ...) is listed once, as the country.  Georgia
        # (US) and Niger (NG) are kept through curated.tsv.
        other = country_keys.get(norm(base)) or country_keys.get(strip_generic(base))
        if s['code'] not in keep_same_name and other not in (None, cc):
            if report:
                print('drop region (is a country):', s['code'], s['name'], file=log)
            continue
        r = {'cc': cc, 'code': code, 'iso': base, 'alts': alts, 'en': None,
             'gn': [], 'name': None, 'aliases': []}
        tr = en.gettext(s['name'])
        if tr != s['name']:
            r['en'] = clean_iso_name(tr)[0]
        regions[(cc, code)] = r
        by_cc[cc].append(r)

    def iso_keys(r):
        ks = {strip_generic(r['iso']), norm(r['iso'])}
        for a in r['alts'] + ([r['en']] if r['en'] else []):
            ks.add(strip_generic(a))
            ks.add(norm(a))
        ks.discard('')
        return ks

    # Cities, and the GeoNames first-level division each one is in.
    gn_rows = read_geonames()
    largest = {}
    for g in gn_rows:
        if g['population'] > largest.get(g['country_code'], (0, None))[0]:
            largest[g['country_code']] = (g['population'], id(g))
    include = {(cc, st, nm) for cc, st, nm in cur['city-include']}
    cities = [g for g in gn_rows if g['population'] >= CITY_MIN or
              (g['country_code'] in LOCAL and g['population'] >= CITY_MIN_LOCAL) or
              largest.get(g['country_code'], (0, None))[1] == id(g) or
              (g['country_code'], g['state'], g['name']) in include]
    for g in cities:
        if g['country_code'] not in countries:
            sys.exit('unknown country code %s' % g['country_code'])

    # Match GeoNames division names to ISO 3166-2 subdivisions: the
    # curated crosswalk first, then equal names (ignoring generic words),
    # then, one to one, a shared prefix or a close spelling.
    gn_names = sorted({(g['country_code'], g['state']) for g in cities})
    match = {}
    taken = set()
    for cc, gname, code in cur['region-match']:
        if (cc, code) not in regions:
            sys.exit('curated region-match: no ISO region %s-%s' % (cc, code))
        match[(cc, gname)] = regions[(cc, code)]
        taken.add((cc, code))
    for cc, gname in gn_names:
        if (cc, gname) in match:
            continue
        k = strip_generic(gname)
        kn = norm(gname)
        hits = [r for r in by_cc[cc] if (cc, r['code']) not in taken and
                (k in iso_keys(r) or kn in iso_keys(r))]
        if len(hits) == 1:
            match[(cc, gname)] = hits[0]
            taken.add((cc, hits[0]['code']))
    no_match = {(cc, gname) for cc, gname in cur['region-nomatch']}
    for cc, gname in gn_names:
        if (cc, gname) in match or (cc, gname) in no_match:
            continue
        k = strip_generic(gname).replace(' ', '')
        if len(k) < 4:
            continue
        scored = []
        for r in by_cc[cc]:
            if (cc, r['code']) in taken:
                continue
            best = 0.0
            for ik in iso_keys(r):
                ik = ik.replace(' ', '')
                n = len(os.path.commonprefix([k, ik]))
                shorter = min(len(k), len(ik))
                pre = n / shorter if shorter >= 4 and n >= 5 else 0.0
                ratio = difflib.SequenceMatcher(None, k, ik).ratio()
                best = max(best, 1.0 if pre >= 0.8 else 0.0, ratio if ratio >= 0.85 else 0.0)
            if best > 0:
                scored.append((best, r))
        scored.sort(key=lambda t: -t[0])
        if scored and (len(scored) == 1 or scored[0][0] > scored[1][0]):
            r = scored[0][1]
            match[(cc, gname)] = r
            taken.add((cc, r['code']))
            if report:
                print('fuzzy: %s %-30s -> %s %s' % (cc, gname, r['code'], r['iso']), file=log)

    # Names.  A matched region is called by its GeoNames (English) name,
    # unless the ISO name is that name without its generic words ("Maine"
    # for "State of Maine").
    gn_only = defaultdict(dict)
    for (cc, gname), r in sorted(match.items(), key=lambda kv: kv[0]):
        r['gn'].append(gname)
    for r in regions.values():
        if r['gn']:
            g = r['gn'][0]
            is_bare = norm(r['iso']) == strip_affix(g) and norm(g) != strip_affix(g)
            r['name'] = r['iso'] if is_bare else g
        else:
            r['name'] = r['en'] or r['iso']
        for a in [r['iso']] + r['alts'] + ([r['en']] if r['en'] else []) + r['gn']:
            add_alias(r['aliases'], a, r['name'])
    n_gn_only = 0
    for cc, gname in gn_names:
        if (cc, gname) in match:
            continue
        n = len(gn_only[cc]) + 1
        r = {'cc': cc, 'code': '~%d' % n, 'name': gname, 'aliases': [], 'gn': [gname]}
        gn_only[cc][gname] = r
        n_gn_only += 1
        if report:
            print('GeoNames-only region: %s %s' % (cc, gname), file=log)
    for cc, code, name, aliases in cur['region']:
        r = regions.get((cc, code))
        if r is None:
            sys.exit('curated region: no ISO region %s-%s' % (cc, code))
        if name and name != r['name']:
            add_alias(r['aliases'], r['name'], name)
            r['name'] = name
            r['aliases'] = [a for a in r['aliases'] if norm(a) != norm(name)]
        for a in split_aliases(aliases):
            add_alias(r['aliases'], a, r['name'])

    def region_of(g):
        r = match.get((g['country_code'], g['state']))
        if r is None:
            r = gn_only[g['country_code']].get(g['state'])
        return r

    # City renames and aliases.
    city_rows = []
    for g in cities:
        city_rows.append({'cc': g['country_code'], 'region': region_of(g), 'name': g['name'],
                          'gstate': g['state'], 'pop': g['population'], 'aliases': []})
    for cc, gstate, gname, name, aliases in cur['city']:
        hits = [c for c in city_rows if c['cc'] == cc and c['gstate'] == gstate and
                c['name'] == gname]
        if not hits:
            sys.exit('curated city not found: %s / %s / %s' % (cc, gstate, gname))
        c = max(hits, key=lambda c: c['pop'])
        if name and name != c['name']:
            add_alias(c['aliases'], c['name'], name)
            c['name'] = name
        for a in split_aliases(aliases):
            add_alias(c['aliases'], a, c['name'])

    # Output: countries, regions, cities; each sorted for stable diffs.
    out = sys.stdout
    out.write('# places.tsv -- generated by derive.py; see README.md for sources and licences.\n')
    out.write('# kind\tcountry\tregion\tname\tpopulation\taliases\n')
    for cc in sorted(countries):
        c = countries[cc]
        out.write('C\t%s\t\t%s\t\t%s\n' % (cc, c['name'], '|'.join(c['aliases'])))
    all_regions = sorted(list(regions.values()) +
                         [r for d in gn_only.values() for r in d.values()],
                         key=lambda r: (r['cc'], r['code']))
    for r in all_regions:
        out.write('R\t%s\t%s\t%s\t\t%s\n' % (r['cc'], r['code'], r['name'], '|'.join(r['aliases'])))
    for c in sorted(city_rows, key=lambda c: (c['cc'], c['region']['code'] if c['region'] else '',
                                              -c['pop'], c['name'])):
        out.write('P\t%s\t%s\t%s\t%d\t%s\n' % (c['cc'], c['region']['code'] if c['region'] else '',
                                               c['name'], c['pop'], '|'.join(c['aliases'])))
    print('countries %d, regions %d (ISO %d, GeoNames-only %d), cities %d; '
          'GeoNames divisions matched to ISO: %d of %d' %
          (len(countries), len(all_regions), len(regions), n_gn_only, len(city_rows),
           len(match), len(gn_names)), file=log)


if __name__ == '__main__':
    main()

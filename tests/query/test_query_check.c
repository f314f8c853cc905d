/* rsclip_query_check: each rule refuses what breaks it, with a reason, and lets a good query
 * through; rsclip_change_periods parses FROM/TO and refuses the rest. No index needed. */
#include "test_util.h"

#include "rsclip/rsclip.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* q is refused, and the reason names what is wrong. */
static void refused(const rsclip_query *q, const char *reason) {
    int rc = rsclip_query_check(q);
    CHECK(rc == RSCLIP_ERR_INVALID_ARG);
    if (rc == RSCLIP_ERR_INVALID_ARG && !strstr(rsclip_last_error(), reason)) {
        fprintf(stderr, "reason '%s' does not say '%s'\n", rsclip_last_error(), reason);
        CHECK(0);
    }
}

/* rsclip_change_periods, and rsclip_change_check over the good query q. */
static void change_rules(const rsclip_query *q) {
    /* change periods */
    rsclip_time from, to;
    CHECK_OK(rsclip_change_periods("2019/2023", &from, &to));
    CHECK(from.end_ms < to.start_ms);
    CHECK_OK(rsclip_change_periods("2019-01/2019-06/2023-01/2023-06", &from, &to));
    rsclip_time june19;
    CHECK_OK(rsclip_time_parse("2019-06", &june19));
    CHECK(from.end_ms == june19.end_ms);
    const char *bad[] = {"2019",           "2023/2019", "2019/2019", "../2023",   "2019/..",
                         "2019/2023/2024", "a/b",       "",          "2019//2023"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = rsclip_change_periods(bad[i], &from, &to);
        CHECK(rc == RSCLIP_ERR_INVALID_ARG);
        if (rc == RSCLIP_ERR_INVALID_ARG && !strstr(rsclip_last_error(), "change periods")) {
            fprintf(stderr, "'%s': %s\n", bad[i], rsclip_last_error());
            CHECK(0);
        }
    }

    /* change queries: the query's rules, no after/before/latest, periods in order */
    CHECK_OK(rsclip_change_periods("2019/2023", &from, &to));
    rsclip_query b = *q;
    CHECK_OK(rsclip_change_check(&b, &from, &to));
    CHECK(rsclip_change_check(&b, &to, &from) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "earlier period") != NULL);
    CHECK(rsclip_change_check(&b, NULL, &to) == RSCLIP_ERR_INVALID_ARG);
    b.k = 0;
    CHECK(rsclip_change_check(&b, &from, &to) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "k must be") != NULL);
    for (int i = 0; i < 3; i++) {
        b = *q;
        if (i == 0)
            b.after = "2020";
        else if (i == 1)
            b.before = "2020";
        else
            b.latest = 1;
        CHECK(rsclip_query_check(&b) == RSCLIP_OK);
        CHECK(rsclip_change_check(&b, &from, &to) == RSCLIP_ERR_INVALID_ARG);
        CHECK(strstr(rsclip_last_error(), "own two periods") != NULL);
    }
}

int main(void) {
    rsclip_query q = rsclip_query_default();
    refused(&q, "give a query");
    q.text = "solar farms";
    CHECK_OK(rsclip_query_check(&q));

    rsclip_query b = q;
    b.text = " \t\n";
    refused(&b, "empty");
    b = q;
    b.like_tile = 3;
    refused(&b, "only one query");
    b = q;
    b.template_str = "a photo of";
    refused(&b, "{}");
    b.template_str = "{}";
    CHECK_OK(rsclip_query_check(&b));
    b = q;
    b.k = 0;
    refused(&b, "k must be");
    b.k = RSCLIP_QUERY_MAX_K + 1;
    refused(&b, "k must be within 1..1000000");
    b.k = RSCLIP_QUERY_MAX_K;
    CHECK_OK(rsclip_query_check(&b));
    /* no query at all: refused by the library, not by each front end */
    b = rsclip_query_default();
    b.text = NULL;
    refused(&b, "give a query");
    b = q;
    b.min_prob = 1.5f;
    refused(&b, "min_prob");
    b.min_prob = NAN;
    refused(&b, "min_prob");
    b = q;
    const char *negs[] = {"clouds", "  "};
    b.negatives = negs;
    b.n_negatives = 2;
    refused(&b, "negative query 2 is empty");
    b.n_negatives = 1;
    CHECK_OK(rsclip_query_check(&b));
    b.n_negatives = RSCLIP_SEARCH_MAX_NEGATIVES + 1;
    refused(&b, "negative");
    b = q;
    b.has_bbox = 1;
    const double ok[4] = {-4.1, 52.3, -3.9, 52.5}, flipped[4] = {-3.9, 52.3, -4.1, 52.5},
                 pole[4] = {0, 80, 1, 95};
    memcpy(b.bbox, ok, sizeof ok);
    CHECK_OK(rsclip_query_check(&b));
    memcpy(b.bbox, flipped, sizeof flipped);
    refused(&b, "west");
    memcpy(b.bbox, pole, sizeof pole);
    refused(&b, "south and north");
    b.bbox[0] = INFINITY;
    refused(&b, "not a number");
    b = q;
    b.has_like_point = 1;
    b.text = NULL;
    b.like_lon = 200;
    refused(&b, "lon,lat");
    b = q;
    b.after = "2023";
    b.before = "2019";
    refused(&b, "later than");
    b.after = "2019-13";
    refused(&b, "2019-13");
    b.after = "2019";
    b.before = "2023-06";
    CHECK_OK(rsclip_query_check(&b));
    b = q;
    b.scene_id = -1;
    refused(&b, "scene id");
    /* like tiles alone are a query; unlike tiles count among the negatives */
    b = rsclip_query_default();
    int64_t likes[2] = {1, 2};
    b.like_tiles = likes;
    b.n_like_tiles = 2;
    CHECK_OK(rsclip_query_check(&b));
    b.n_like_tiles = RSCLIP_QUERY_MAX_EXAMPLES + 1;
    refused(&b, "like");

    change_rules(&q);
    return tu_finish("test_query_check");
}

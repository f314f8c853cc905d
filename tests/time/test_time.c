/* rsclip/time.h: ISO 8601 in and out, periods of partial dates, intervals, file-name patterns. */
#include "rsclip/rsclip.h"
#include "test_util.h"

#include <stdint.h>

static int64_t ms(const char *text) {
    rsclip_time t;
    if (rsclip_time_parse(text, &t) != RSCLIP_OK) return -1;
    return t.start_ms;
}

static void check_span(const char *text, const char *want) {
    rsclip_time t;
    char buf[RSCLIP_TIME_TEXT_MAX];
    CHECK_OK(rsclip_time_parse(text, &t));
    CHECK_OK(rsclip_time_format(&t, buf, sizeof buf));
    if (strcmp(buf, want) != 0) {
        fprintf(stderr, "%s -> %s, want %s\n", text, buf, want);
        tu_failures++;
    }
}

int main(void) {
    /* instants: zones, fractions, separators */
    CHECK(ms("1970-01-01T00:00:00Z") == 0);
    CHECK(ms("1970-01-01T00:00:01.5Z") == 1500);
    CHECK(ms("2021-05-27T11:21:21+02:00") == ms("2021-05-27T09:21:21Z"));
    CHECK(ms("2021-05-27T11:21:21-0130") == ms("2021-05-27T12:51:21Z"));
    CHECK(ms("2021-05-27 11:21:21") == ms("2021-05-27T11:21:21Z"));
    CHECK(ms("2021:05:27 11:21:21") == ms("2021-05-27T11:21:21Z")); /* TIFFTAG_DATETIME */
    CHECK(ms("2000-03-01T00:00:00Z") - ms("2000-02-28T00:00:00Z") == 2 * 86400000LL); /* leap */
    CHECK(ms("1900-03-01T00:00:00Z") - ms("1900-02-28T00:00:00Z") == 86400000LL);
    check_span("2021-05-27T11:21:21.024Z", "2021-05-27T11:21:21.024Z");
    check_span("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z");
    /* periods and intervals */
    check_span("2020", "2020-01-01T00:00:00Z/2020-12-31T23:59:59.999Z");
    check_span("2020-02", "2020-02-01T00:00:00Z/2020-02-29T23:59:59.999Z");
    check_span("2020-12-31", "2020-12-31T00:00:00Z/2020-12-31T23:59:59.999Z");
    check_span("2019/2023", "2019-01-01T00:00:00Z/2023-12-31T23:59:59.999Z");
    check_span("2019-01-01T00:00:00Z/2019-12-31T23:59:59Z",
               "2019-01-01T00:00:00Z/2019-12-31T23:59:59Z");
    check_span("../2020", "../2020-12-31T23:59:59.999Z");
    check_span("2019/..", "2019-01-01T00:00:00Z/..");
    /* refused */
    rsclip_time t;
    const char *bad[] = {"",
                         "20",
                         "2021-13",
                         "2021-02-30",
                         "2021-05-27T24:00",
                         "2021-x",
                         "2021-05-27T11:61:00Z",
                         "2021/2019",
                         "../..",
                         "2021-05-27T1:00",
                         "2021/2022/2023",
                         "2021-05-27T11:21:21+25:00",
                         "2021-05-27Tjunk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = rsclip_time_parse(bad[i], &t);
        if (rc != RSCLIP_ERR_INVALID_ARG) {
            fprintf(stderr, "'%s' accepted\n", bad[i]);
            tu_failures++;
        } else {
            CHECK(strstr(rsclip_last_error(), "not a time") != NULL);
        }
    }
    /* overlaps */
    rsclip_time y2020, y2021, inst, inst2;
    CHECK_OK(rsclip_time_parse("2020", &y2020));
    CHECK_OK(rsclip_time_parse("2021", &y2021));
    CHECK_OK(rsclip_time_parse("2020-06-01T10:00:00Z", &inst));
    CHECK_OK(rsclip_time_parse("2021-01-01T00:00:00Z", &inst2));
    CHECK(rsclip_time_overlaps(&y2020, &inst) && rsclip_time_overlaps(&inst, &y2020));
    CHECK(!rsclip_time_overlaps(&y2020, &y2021));
    CHECK(!rsclip_time_overlaps(&y2020, &inst2) && rsclip_time_overlaps(&y2021, &inst2));
    CHECK(rsclip_time_overlaps(&inst, &inst) && !rsclip_time_overlaps(&inst, &inst2));
    /* file names */
    CHECK(rsclip_time_from_name("/d/S2A_MSIL2A_20210527T112121_N0300_R037_T30UVD.tif", "sentinel2",
                                &t) == 1);
    CHECK(t.start_ms == ms("2021-05-27T11:21:21Z") && t.end_ms == t.start_ms);
    CHECK(rsclip_time_from_name("LC08_L2SP_023036_20200905_20200918_02_T1_SR_B4.TIF", "landsat",
                                &t) == 1);
    CHECK(t.start_ms == ms("2020-09-05") && t.end_ms - t.start_ms == 86400000LL - 1);
    CHECK(rsclip_time_from_name("/x/other.tif", "landsat", &t) == 0);
    CHECK(rsclip_time_from_name("ortho_2014-08.tif", "_(?P<year>\\d{4})-(?P<month>\\d\\d)", &t) ==
          1);
    CHECK(t.start_ms == ms("2014-08"));
    CHECK(rsclip_time_from_name("ortho_2014-13.tif", "_(?<year>\\d{4})-(?<month>\\d\\d)", &t) == 0);
    CHECK(rsclip_time_from_name("a.tif", "(?<month>\\d\\d)", &t) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "year") != NULL);
    CHECK(rsclip_time_from_name("a.tif", "(?<year>\\d{4}", &t) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), "offset") != NULL);
    CHECK(rsclip_time_pattern_check("sentinel2") == RSCLIP_OK);
    return tu_finish("test_time");
}

# Search core benchmark (tests/bench/search_bench.sh runs it beside SQLite and FAISS baselines).
add_executable(search_bench ${CMAKE_CURRENT_LIST_DIR}/search_bench.c)
target_link_libraries(search_bench PRIVATE rsclip_core)
target_compile_definitions(search_bench PRIVATE _GNU_SOURCE)

# A sharded index against its merged file, query latency in one process (scale_bench.sh runs it).
add_executable(folder_bench ${CMAKE_CURRENT_LIST_DIR}/folder_bench.c)
target_link_libraries(folder_bench PRIVATE rsclip_core)
target_compile_definitions(folder_bench PRIVATE _GNU_SOURCE)

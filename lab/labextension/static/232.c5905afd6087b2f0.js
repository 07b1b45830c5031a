"use strict";(self.rspackChunkqkit_lab=self.rspackChunkqkit_lab||[]).push([[232],{475(e,t,r){var o=r(601),n=r.n(o),a=r(314),i=(r.n(a))()(n());i.push([e.id,`/* The qkit side panel: papers, verdict badges, job progress, errors. */
.qkit-panel {
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
  overflow-y: auto;
  padding: 8px 12px;
}

.qkit-panel-header {
  align-items: center;
  display: flex;
  justify-content: space-between;
}

.qkit-panel h2 {
  font-size: var(--jp-ui-font-size2);
  margin: 4px 0;
}

.qkit-runs-folder {
  color: var(--jp-ui-font-color2);
  margin-bottom: 6px;
}

.qkit-paper {
  border-top: 1px solid var(--jp-border-color2);
  padding: 8px 0;
}

.qkit-paper h3 {
  font-size: var(--jp-ui-font-size1);
  margin: 0 0 2px;
}

.qkit-run-meta,
.qkit-no-run,
.qkit-job {
  color: var(--jp-ui-font-color2);
  margin: 6px 0 4px;
}

.qkit-progress {
  display: block;
  width: 100%;
}

.qkit-error {
  color: var(--jp-error-color1);
  white-space: pre-wrap;
}

.qkit-job-failed {
  color: var(--jp-error-color1);
}

.qkit-paper-title {
  color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size0);
  margin-bottom: 6px;
}

.qkit-counts {
  display: flex;
  flex-wrap: wrap;
  gap: 6px;
  margin: 4px 0;
}

.qkit-claims,
.qkit-sanity-list {
  list-style: none;
  margin: 4px 0;
  padding: 0;
}

.qkit-claim {
  margin: 3px 0;
}

.qkit-verdict {
  border-radius: 3px;
  color: #fff;
  font-size: var(--jp-ui-font-size0);
  padding: 0 5px;
  white-space: nowrap;
}

.qkit-verdict-holds {
  background: #2e7d32;
}

.qkit-verdict-inconclusive {
  background: #8d6e00;
}

.qkit-verdict-does-not-hold {
  background: #c62828;
}

.qkit-sanity summary {
  cursor: pointer;
  color: var(--jp-ui-font-color2);
}

.qkit-links {
  display: flex;
  gap: 12px;
  margin-top: 4px;
}

.qkit-links a {
  color: var(--jp-content-link-color);
  text-decoration: underline;
}
`,""]),r.d(t,{},{A:i})},314(e){e.exports=function(e){var t=[];return t.toString=function(){return this.map(function(t){var r="",o=void 0!==t[5];return t[4]&&(r+="@supports (".concat(t[4],") {")),t[2]&&(r+="@media ".concat(t[2]," {")),o&&(r+="@layer".concat(t[5].length>0?" ".concat(t[5]):""," {")),r+=e(t),o&&(r+="}"),t[2]&&(r+="}"),t[4]&&(r+="}"),r}).join("")},t.i=function(e,r,o,n,a){"string"==typeof e&&(e=[[null,e,void 0]]);var i={};if(o)for(var c=0;c<this.length;c++){var s=this[c][0];null!=s&&(i[s]=!0)}for(var p=0;p<e.length;p++){var l=[].concat(e[p]);o&&i[l[0]]||(void 0!==a&&(void 0===l[5]||(l[1]="@layer".concat(l[5].length>0?" ".concat(l[5]):""," {").concat(l[1],"}")),l[5]=a),r&&(l[2]&&(l[1]="@media ".concat(l[2]," {").concat(l[1],"}")),l[2]=r),n&&(l[4]?(l[1]="@supports (".concat(l[4],") {").concat(l[1],"}"),l[4]=n):l[4]="".concat(n)),t.push(l))}},t}},601(e){e.exports=function(e){return e[1]}},72(e){var t=[];function r(e){for(var r=-1,o=0;o<t.length;o++)if(t[o].identifier===e){r=o;break}return r}function o(e,o){for(var n={},a=[],i=0;i<e.length;i++){var c=e[i],s=o.base?c[0]+o.base:c[0],p=n[s]||0,l="".concat(s," ").concat(p);n[s]=p+1;var u=r(l),d={css:c[1],media:c[2],sourceMap:c[3],supports:c[4],layer:c[5]};if(-1!==u)t[u].references++,t[u].updater(d);else{var f=function(e,t){var r=t.domAPI(t);return r.update(e),function(t){t?(t.css!==e.css||t.media!==e.media||t.sourceMap!==e.sourceMap||t.supports!==e.supports||t.layer!==e.layer)&&r.update(e=t):r.remove()}}(d,o);o.byIndex=i,t.splice(i,0,{identifier:l,updater:f,references:1})}a.push(l)}return a}e.exports=function(e,n){var a=o(e=e||[],n=n||{});return function(e){e=e||[];for(var i=0;i<a.length;i++){var c=r(a[i]);t[c].references--}for(var s=o(e,n),p=0;p<a.length;p++){var l=r(a[p]);0===t[l].references&&(t[l].updater(),t.splice(l,1))}a=s}}},659(e){var t={};e.exports=function(e,r){var o=function(e){if(void 0===t[e]){var r=document.querySelector(e);if(window.HTMLIFrameElement&&r instanceof window.HTMLIFrameElement)try{r=r.contentDocument.head}catch(e){r=null}t[e]=r}return t[e]}(e);if(!o)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");o.appendChild(r)}},540(e){e.exports=function(e){var t=document.createElement("style");return e.setAttributes(t,e.attributes),e.insert(t,e.options),t}},56(e,t,r){e.exports=function(e){var t=r.nc;t&&e.setAttribute("nonce",t)}},206(e){e.exports=function(e){if("u"<typeof document)return{update:function(){},remove:function(){}};var t=e.insertStyleElement(e);return{update:function(r){var o,n,a;o="",r.supports&&(o+="@supports (".concat(r.supports,") {")),r.media&&(o+="@media ".concat(r.media," {")),(n=void 0!==r.layer)&&(o+="@layer".concat(r.layer.length>0?" ".concat(r.layer):""," {")),o+=r.css,n&&(o+="}"),r.media&&(o+="}"),r.supports&&(o+="}"),(a=r.sourceMap)&&"u">typeof btoa&&(o+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(a))))," */")),e.styleTagTransform(o,t,e.options)},remove:function(){var e;null===(e=t).parentNode||e.parentNode.removeChild(e)}}}},113(e){e.exports=function(e,t){if(t.styleSheet)t.styleSheet.cssText=e;else{for(;t.firstChild;)t.removeChild(t.firstChild);t.appendChild(document.createTextNode(e))}}},579(e,t,r){var o=r(72),n=r.n(o),a=r(206),i=r.n(a),c=r(659),s=r.n(c),p=r(56),l=r.n(p),u=r(540),d=r.n(u),f=r(113),v=r.n(f),m=r(475),h={};h.styleTagTransform=v(),h.setAttributes=l(),h.insert=s().bind(null,"head"),h.domAPI=i(),h.insertStyleElement=d(),n()(m.A,h),m.A&&m.A.locals&&m.A.locals}}]);